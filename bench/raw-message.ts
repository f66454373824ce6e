/**
 * The first message of a WebSocket, timed at the socket: the bench's dashboard for a snapshot.
 *
 * A WebSocket library gathers a message's fragments into one buffer and checks its text before
 * it hands the message over; for a snapshot of a million online (230 MB) that is about 2 s of
 * the receiving process's CPU, on a 2-core machine CPU the server and Redis would otherwise
 * have, and it is the dashboard's work, not the server's. This reader does the handshake, keeps
 * the socket's bytes as they come and reads only the frames' headers while they arrive: the
 * first byte and the last are timed when they reach the process. The message is put together
 * from the frames afterwards.
 */
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'

export interface RawMessage {
  /** ms from the request to the first byte after the handshake, and to the message's last byte. */
  firstByteMs: number
  lastByteMs: number
  /** The message's payload (its data frames' payloads in order). */
  data: Buffer
  /** The process's CPU (user + system) from the request to the last byte, ms. */
  cpuMs: number
}

const OPCODE_CLOSE = 0x8
/** Opcodes at or past this are control frames (close, ping, pong), which may come between a message's fragments. */
const FIRST_CONTROL = 0x8

interface Frame {
  fin: boolean
  opcode: number
  /** Where the payload starts and ends in the stream, from its first byte after the handshake. */
  from: number
  to: number
}

/**
 * Reads frame headers from a stream of chunks: `push` each chunk; it answers the frames whose
 * header ended in it. Server frames are unmasked: a header is 2, 4 or 10 bytes.
 */
class FrameHeaders {
  private header: number[] = []
  /** Payload bytes of the current frame still to come. */
  private skip = 0
  /** Stream offset of the next byte to be pushed. */
  private at = 0

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = []
    let i = 0
    while (i < chunk.length) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, chunk.length - i)
        this.skip -= take
        i += take
        continue
      }
      this.header.push(chunk[i] as number)
      i += 1
      const [first, second] = this.header
      if (second === undefined || first === undefined) continue
      if ((second & 0x80) !== 0) throw new Error('a server frame was masked')
      const short = second & 0x7f
      const size = short === 126 ? 4 : short === 127 ? 10 : 2
      if (this.header.length < size) continue
      let length = short
      if (short === 126) length = ((this.header[2] as number) << 8) | (this.header[3] as number)
      if (short === 127) {
        length = 0
        for (let k = 2; k < 10; k += 1) length = length * 256 + (this.header[k] as number)
      }
      const from = this.at + i
      frames.push({ fin: (first & 0x80) !== 0, opcode: first & 0x0f, from, to: from + length })
      this.header = []
      this.skip = length
    }
    this.at += chunk.length
    return frames
  }
}

/**
 * Bytes kept as they come, in one buffer that doubles when full: the socket's reads land in a
 * buffer of its own that is reused. The buffer is filled when made, so its pages are the
 * process's before the first byte: a fresh page's first write costs a fault, and 230 MB of
 * them took the receiving process more CPU than the rest of its work.
 */
class Kept {
  buffer: Buffer
  length = 0

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size).fill(0)
  }

  add(bytes: Buffer): void {
    if (this.length + bytes.length > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes.length))
      this.buffer.copy(bigger, 0, 0, this.length)
      this.buffer = bigger
    }
    this.length += bytes.copy(this.buffer, this.length)
  }
}

const HEAD_END = Buffer.from('\r\n\r\n')
/** The longest handshake response read before giving up on it. */
const MAX_HEAD = 16 * 1024

/**
 * The first message on a WebSocket to 127.0.0.1:`port``path`; rejects on a refused upgrade, a
 * close frame, an error, or none within `deadlineMs`. The handshake is written by hand so that
 * the socket reads into one buffer, reused (`onread`), rather than a new one per read.
 * `expectBytes`: about how long the message is (the stream is kept in a buffer of about that
 * size made before the request, and grows when it is not enough).
 */
export function firstMessageRaw(port: number, path: string, deadlineMs: number, expectBytes = 1 << 20): Promise<RawMessage> {
  const kept = new Kept(expectBytes + (1 << 20))
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  return new Promise((resolve, reject) => {
    let head: Buffer | undefined = Buffer.alloc(0)
    const frames: Frame[] = []
    const headers = new FrameHeaders()
    let firstByteMs: number | undefined
    let last: Frame | undefined
    let done = false
    const finish = (error: Error | undefined, message?: RawMessage): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      if (error === undefined) resolve(message as RawMessage)
      else reject(error)
    }
    const frameBytes = (bytes: Buffer): void => {
      firstByteMs ??= performance.now() - started
      kept.add(bytes)
      for (const frame of headers.push(bytes)) {
        if (frame.opcode === OPCODE_CLOSE) throw new Error('the socket closed before the message arrived')
        if (frame.opcode >= FIRST_CONTROL) continue
        if (last === undefined) frames.push(frame)
        if (frame.fin) last ??= frame
      }
      if (last === undefined || kept.length < last.to) return
      const lastByteMs = performance.now() - started
      const cpu = process.cpuUsage(cpuBefore)
      const data = Buffer.concat(frames.map((frame) => kept.buffer.subarray(frame.from, frame.to)))
      finish(undefined, { firstByteMs, lastByteMs, data, cpuMs: (cpu.user + cpu.system) / 1000 })
    }
    const onRead = (n: number, buffer: Buffer): boolean => {
      if (done) return false
      let bytes = buffer.subarray(0, n)
      try {
        if (head !== undefined) {
          head = Buffer.concat([head, bytes])
          const end = head.indexOf(HEAD_END)
          if (end === -1) {
            if (head.length > MAX_HEAD) throw new Error('no end to the handshake response')
            return true
          }
          const status = head.toString('latin1', 0, head.indexOf('\r\n'))
          if (!/^HTTP\/1\.1 101 /.test(status)) throw new Error(`the upgrade was refused: ${status}`)
          bytes = head.subarray(end + HEAD_END.length)
          head = undefined
          if (bytes.length === 0) return true
        }
        frameBytes(bytes)
      } catch (error) {
        finish(error as Error)
        return false
      }
      return true
    }
    const socket = connect({ host: '127.0.0.1', port, onread: { buffer: Buffer.allocUnsafe(1 << 20), callback: onRead } })
    const timer = setTimeout(() => finish(new Error(`no message within ${deadlineMs} ms`)), deadlineMs)
    socket.once('error', (error) => finish(error))
    socket.once('close', () => finish(new Error('the socket closed before the message arrived')))
    socket.once('connect', () => {
      const key = randomBytes(16).toString('base64')
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`)
    })
  })
}
