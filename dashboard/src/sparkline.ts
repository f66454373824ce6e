/** An inline-SVG sparkline of the online count over a range (GET /admin/api/stats/online). */
const SVG = 'http://www.w3.org/2000/svg'
const W = 120
const H = 28

export interface SparkPoint {
  t: number
  online: number
}

/** The polyline's points: time on x over [from, to], count on y over [0, peak]. */
export function sparkPath(points: readonly SparkPoint[], from: number, to: number): string {
  const peak = Math.max(1, ...points.map((p) => p.online))
  const span = Math.max(1, to - from)
  return points
    .filter((p) => p.t >= from && p.t <= to)
    .map((p) => {
      const x = ((p.t - from) / span) * W
      const y = H - 1 - (p.online / peak) * (H - 2)
      return `${x.toFixed(1)},${y.toFixed(1)}`
    })
    .join(' ')
}

export function renderSparkline(svg: SVGSVGElement, points: readonly SparkPoint[], from: number, to: number): void {
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`)
  svg.setAttribute('preserveAspectRatio', 'none')
  while (svg.firstChild) svg.removeChild(svg.firstChild)
  const path = sparkPath(points, from, to)
  if (path === '') return
  const coords = path.split(' ')
  const first = coords[0]?.split(',')[0] ?? '0'
  const last = coords[coords.length - 1]?.split(',')[0] ?? String(W)
  const area = document.createElementNS(SVG, 'polygon')
  area.setAttribute('points', `${first},${H} ${path} ${last},${H}`)
  area.setAttribute('class', 'area')
  const line = document.createElementNS(SVG, 'polyline')
  line.setAttribute('points', coords.length === 1 ? `${path} ${W},${coords[0]?.split(',')[1] ?? H}` : path)
  line.setAttribute('class', 'line')
  line.setAttribute('vector-effect', 'non-scaling-stroke')
  svg.append(area, line)
}
