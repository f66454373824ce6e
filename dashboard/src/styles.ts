/** The widget's stylesheet, scoped by its shadow root. Theming: the --cat-* custom properties. */
export const STYLES = `
:host{display:block;position:relative;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--cat-fg,#1d2433);
  --accent:var(--cat-accent,#2563eb);--muted:var(--cat-muted,#5b6478);--line:var(--cat-line,#e3e6ec);--bg:var(--cat-bg,#fff);
  --active:var(--cat-active,#15803d);--idle:var(--cat-idle,#a16207);--bad:var(--cat-bad,#b91c1c);--hl:var(--cat-highlight,#fff4bf)}
:host([hidden]){display:none}
*{box-sizing:border-box}
.w{background:var(--bg);border:1px solid var(--line);border-radius:10px;overflow:hidden;container-type:inline-size}
.top{display:flex;flex-wrap:wrap;align-items:center;gap:12px 20px;padding:14px 16px;border-bottom:1px solid var(--line)}
.count{display:flex;align-items:baseline;gap:6px;min-width:7rem}
.count h2{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);margin:0}
.n{font-size:28px;font-weight:650;font-variant-numeric:tabular-nums;line-height:1}
.lbl{color:var(--muted)}
.conn{display:inline-flex;align-items:center;gap:6px;font-size:12px;color:var(--muted);white-space:nowrap}
.conn::before{content:"";width:8px;height:8px;border-radius:50%;background:#9aa3b5}
.w[data-state=live] .conn::before{background:var(--active);box-shadow:0 0 0 3px color-mix(in srgb,var(--active) 20%,transparent)}
.w[data-state=disconnected] .conn::before,.w[data-state=refused] .conn::before{background:var(--bad)}
.sparks{display:flex;gap:16px;margin:0;flex-wrap:wrap}
figure{margin:0;display:grid;grid-template-columns:auto;gap:2px}
figure svg{width:120px;height:28px;display:block;overflow:visible}
figcaption{font-size:11px;color:var(--muted);white-space:nowrap}
.line{fill:none;stroke:var(--accent);stroke-width:1.5}
.area{fill:color-mix(in srgb,var(--accent) 12%,transparent);stroke:none}
.filter{margin-inline-start:auto;display:flex;align-items:center;gap:8px}
.filter span{color:var(--muted);font-size:12px}
input{font:inherit;padding:6px 10px;border:1px solid var(--line);border-radius:6px;width:14rem;max-width:100%;background:var(--bg);color:inherit}
input:focus-visible,button:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
.notice{padding:28px 16px;text-align:center;color:var(--muted)}
.notice[hidden]{display:none}
.notice strong{display:block;color:var(--fg,inherit);font-size:15px;margin-bottom:4px}
.w[data-state=refused] .notice strong{color:var(--bad)}
.banner{display:flex;gap:12px;align-items:center;justify-content:center;padding:8px 16px;background:#fdecec;color:var(--bad);font-size:13px;border-bottom:1px solid var(--line)}
.banner[hidden]{display:none}
.banner button,.more{font:inherit;font-size:12px;padding:4px 10px;border:1px solid currentColor;border-radius:6px;background:transparent;color:inherit;cursor:pointer}
.bar{display:flex;flex-wrap:wrap;align-items:center;gap:6px 12px;padding:6px 16px 0;font-size:12px;color:var(--muted)}
.bar:not(:has(>:not([hidden]))){display:none}
.shown[hidden],.chip[hidden]{display:none}
.chip{display:inline-flex;align-items:center;gap:4px;padding:2px 4px 2px 10px;border:1px solid var(--accent);border-radius:999px;color:var(--accent);font-weight:600}
.chip .x{font-size:16px;padding:0 6px;color:inherit}
.views{display:inline-flex;border:1px solid var(--line);border-radius:6px;overflow:hidden}
.vb{font:inherit;font-size:12px;padding:5px 10px;border:0;border-inline-start:1px solid var(--line);background:var(--bg);color:inherit;cursor:pointer}
.vb:first-child{border-inline-start:0}
.vb[aria-pressed=true]{background:var(--accent);color:#fff}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.grid{display:grid;grid-template-columns:minmax(9rem,1.2fr) minmax(10rem,2fr) 5.5rem 6.5rem 7.5rem;gap:12px;align-items:center}
.head{padding:8px 16px;font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);border-bottom:1px solid var(--line)}
.head[hidden]{display:none}
ul{list-style:none;margin:0;padding:0}
.vp,.groups{max-height:var(--cat-max-height,520px);overflow:auto}
.vp[hidden],.groups[hidden]{display:none}
.w[data-state=disconnected] .vp{opacity:.55}
.vp>ul{position:relative;--rh:55px;contain:strict;min-height:1px}
.vp>ul>li{position:absolute;left:0;right:0;height:var(--rh);border-bottom:1px solid var(--line);contain:layout paint}
.row{font:inherit;color:inherit;background:none;border:0;width:100%;text-align:start;cursor:pointer;padding:8px 16px;height:100%;overflow:hidden}
.groups>ul>li{border-bottom:1px solid var(--line)}
.grow{font:inherit;color:inherit;background:none;border:0;width:100%;text-align:start;cursor:pointer;padding:8px 16px;display:flex;align-items:center;gap:12px}
.grow:hover{background:#f6f8fb}
.grow .c{flex:1}
.gl{font-weight:600}
.gd{color:var(--muted);font-size:12px}
.gc{font-weight:600;white-space:nowrap}
.gmore{margin:0;padding:8px 16px;font-size:12px;color:var(--muted)}
.gmore:empty{display:none}
.row:hover{background:#f6f8fb}
li.new .row{background:var(--hl)}
.c{display:flex;flex-direction:column;min-width:0}
.c>span{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.name{font-weight:600}
.sub,.path{color:var(--muted);font-size:12px}
.path{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.badge{display:inline-flex;align-items:center;gap:5px;font-size:12px;font-weight:600}
.badge::before{content:"";width:7px;height:7px;border-radius:50%;background:currentColor}
.badge.active{color:var(--active)}
.badge.idle{color:var(--idle)}
.tabs{font-size:11px;color:var(--muted);margin-inline-start:4px}
.num{font-variant-numeric:tabular-nums}
@container (max-width:640px){
  .grid{grid-template-columns:1fr auto}
  .grid{gap:4px 12px}
  .vp>ul{--rh:97px}
  .head{display:none}
  .pg{grid-column:1/-1;grid-row:2}
  .dur,.seen{display:none}
  .filter{margin-inline-start:0;width:100%}
  input{width:100%}
}
.gear{font:inherit;font-size:12px;padding:5px 10px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:inherit;cursor:pointer}
.gear[aria-expanded=true]{border-color:var(--accent);color:var(--accent)}
.gear[hidden]{display:none}
.settings{padding:14px 16px 16px;border-bottom:1px solid var(--line);background:color-mix(in srgb,var(--accent) 3%,var(--bg))}
.settings[hidden]{display:none}
.settings h3{margin:0 0 2px;font-size:15px}
.settings .intro{margin:0 0 12px;color:var(--muted);font-size:12px}
.license:empty{display:none}
.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(13rem,1fr));gap:10px 16px}
.field{display:grid;grid-template-rows:1fr auto auto;align-items:end;gap:3px}
.field .fl{font-size:12px;font-weight:600}
.field input{width:100%}
.field .src{font-size:11px;color:var(--muted)}
.actions{display:flex;align-items:center;gap:12px;margin-top:12px}
.save{font:inherit;font-size:13px;padding:6px 14px;border:1px solid var(--accent);border-radius:6px;background:var(--accent);color:#fff;cursor:pointer}
.save:disabled{opacity:.6;cursor:default}
.ok{margin:0;color:var(--active);font-size:12px}
.err{margin:8px 0 0;color:var(--bad);font-size:13px}
.err:empty,.ok:empty{display:none}
.licbtn{font:inherit;font-size:12px;padding:5px 10px;border:1px solid var(--line);border-radius:6px;background:transparent;color:inherit;cursor:pointer}
.licbtn[hidden]{display:none}
.licbtn[data-state=grace]{border-color:var(--idle);color:var(--idle)}
.licbtn[data-state=unlicensed],.licbtn[data-state=expired],.licbtn[data-state=invalid],.licbtn[data-state=domain_mismatch]{border-color:var(--bad);color:var(--bad)}
.lic{padding:14px 16px;border-bottom:1px solid var(--line);background:color-mix(in srgb,var(--accent) 4%,var(--bg))}
.lic[hidden]{display:none}
.lic h3{margin:0 0 6px;font-size:15px}
.lic p{margin:4px 0}
.lic p:empty{display:none}
.ls strong{font-weight:650}
.lic[data-state=active] .ls strong{color:var(--active)}
.lic[data-state=grace] .ls strong{color:var(--idle)}
.lic[data-state=unlicensed] .ls strong,.lic[data-state=expired] .ls strong,.lic[data-state=invalid] .ls strong,.lic[data-state=domain_mismatch] .ls strong{color:var(--bad)}
.lf{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0;font-size:13px}
.lf:empty{display:none}
.lf dt{color:var(--muted)}
.lf dd{margin:0}
.ld{font-size:12px;color:var(--muted)}
.lk{display:flex;flex-wrap:wrap;align-items:flex-end;gap:8px;margin-top:10px}
.lk[hidden]{display:none}
.lk label{display:flex;flex-direction:column;gap:2px;font-size:12px;color:var(--muted)}
.lk input{width:22rem;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.primary{font:inherit;padding:6px 14px;border:1px solid var(--accent);border-radius:6px;background:var(--accent);color:#fff;cursor:pointer}
.primary:disabled{opacity:.6;cursor:default}
.lr{font-size:13px}
.w[data-state=refused] .lic ~ .notice strong{color:var(--bad)}
.drawer{position:fixed;inset:0 0 0 auto;width:min(440px,100vw);background:var(--bg);border-inline-start:1px solid var(--line);box-shadow:-12px 0 32px rgba(15,23,42,.14);display:flex;flex-direction:column;z-index:2147483000}
.drawer[hidden]{display:none}
.dh{display:flex;gap:12px;align-items:flex-start;padding:16px;border-bottom:1px solid var(--line)}
.dh div{flex:1;min-width:0}
.dh h3{margin:0;font-size:16px}
.x{font:inherit;font-size:20px;line-height:1;border:0;background:none;cursor:pointer;color:var(--muted);padding:2px 6px;border-radius:6px}
.db{overflow:auto;padding:8px 16px 16px;flex:1}
.msg{color:var(--muted)}
.msg:empty{display:none}
.sessions{list-style:none;margin:0;padding:0}
.session{border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:10px 0}
.sh{display:flex;flex-wrap:wrap;gap:4px 10px;align-items:baseline}
.sh strong{font-weight:600}
.sh span{color:var(--muted);font-size:12px}
.pages{list-style:none;margin:8px 0 0;padding:0}
.pages li{display:grid;grid-template-columns:1fr auto;gap:0 10px;padding:5px 0;border-bottom:1px dashed var(--line)}
.pages li:last-child{border-bottom:0}
.pt{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.pages .path{grid-column:1}
.pm{grid-column:2;grid-row:1/3;text-align:end;font-size:12px;color:var(--muted)}
.more{margin-top:4px;color:var(--accent)}
.more[hidden]{display:none}
`
