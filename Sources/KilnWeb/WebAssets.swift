/// The UI's static files, compiled in (no build step, nothing fetched at run time).
enum WebAssets {
    static let favicon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#b4532a"/>\
        <path d="M9 7v18M9 16l11-9M13 13l8 12" stroke="#fff" stroke-width="3.5" fill="none" stroke-linecap="round"/></svg>
        """

    /// Light and dark themes follow the OS.
    static let css = """
        :root { color-scheme: light dark; --bg: #fff; --fg: #1d1d1f; --muted: #6b6b70; --line: #e3e3e6; --head: #f6f6f7;
          --accent: #b4532a; --ok: #1a7f37; --bad: #c62828; --run: #1565c0; }
        @media (prefers-color-scheme: dark) { :root { --bg: #161618; --fg: #ececef; --muted: #a0a0a8; --line: #333338;
          --head: #202024; --accent: #e0794c; --ok: #4caf50; --bad: #ef5350; --run: #64b5f6; } }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
        header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
        header .brand { font-weight: 700; color: var(--accent); text-decoration: none; font-size: 1.1em; }
        header nav { flex: 1; } header nav a { color: var(--fg); text-decoration: none; margin-right: 1em; }
        form.find { margin: 0; } form.inline { display: inline; margin-right: .3em; } form.find input { width: 16em; }
        .signout { display: flex; gap: .6em; align-items: center; margin: 0; } .who { color: var(--muted); }
        main { padding: 1em 1.2em; max-width: 1400px; }
        h1 { font-size: 1.4em; margin: .2em 0 .6em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
        a { color: var(--run); }
        table { border-collapse: collapse; width: 100%; } .scroll { overflow-x: auto; }
        th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line); white-space: nowrap; }
        thead th { background: var(--head); position: sticky; top: 0; } thead th a { color: var(--fg); text-decoration: none; }
        table.kv { width: auto; } table.kv th { color: var(--muted); font-weight: 500; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.child td:first-child::before { content: "↳ "; color: var(--muted); }
        tr.depth-1 td:first-child { padding-left: 1.75em; } tr.depth-2 td:first-child { padding-left: 3em; }
        tr.depth-3 td:first-child { padding-left: 4.25em; } tr.depth-4 td:first-child, tr.depth-5 td:first-child,
        tr.depth-6 td:first-child, tr.depth-7 td:first-child, tr.depth-8 td:first-child { padding-left: 5.5em; }
        .status { font-size: .85em; font-weight: 600; } .status.finished { color: var(--ok); } .status.failed, .status.killed { color: var(--bad); }
        .status.running { color: var(--run); }
        form.search, form.login { display: flex; gap: .6em; align-items: center; margin: .4em 0 1em; flex-wrap: wrap; }
        form.login { flex-direction: column; align-items: flex-start; max-width: 28em; }
        input { font: inherit; padding: .35em .5em; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
        form.login input[type=password] { width: 100%; }
        button { font: inherit; padding: .35em .9em; border: 1px solid var(--accent); border-radius: 4px; background: var(--accent); color: #fff; cursor: pointer; }
        .notice { border-left: 4px solid var(--bad); padding: .4em .8em; background: var(--head); }
        .hint, .meta { color: var(--muted); } .next { display: inline-block; margin-top: .8em; }
        code { font-size: .92em; }
        pre.preview { background: var(--head); padding: .8em; overflow: auto; max-height: 70vh; border-radius: 6px; }
        img.preview { max-width: 100%; border: 1px solid var(--line); } iframe.preview { width: 100%; height: 60vh; border: 1px solid var(--line); }
        .charts { display: flex; flex-wrap: wrap; gap: 1em; } figure.chart { display: inline-block; vertical-align: top; margin: 0 1em 1em 0; border: 1px solid var(--line); border-radius: 6px; padding: .4em; }
        figure.chart figcaption { font-weight: 600; margin: 0 0 .2em .3em; }
        svg .axis line { stroke: var(--muted); stroke-width: 1; } svg .axis text { fill: var(--muted); font-size: 11px; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        tr.differs th { color: var(--accent); }
        svg .run-line { fill: none; stroke-width: 1.6; opacity: .85; } svg circle { opacity: .85; }
        .c0 { stroke: #b4532a; fill: #b4532a; } .c1 { stroke: #1565c0; fill: #1565c0; } .c2 { stroke: #2e7d32; fill: #2e7d32; }
        .c3 { stroke: #6a1b9a; fill: #6a1b9a; } .c4 { stroke: #c62828; fill: #c62828; } .c5 { stroke: #00838f; fill: #00838f; }
        .c6 { stroke: #ef6c00; fill: #ef6c00; } .c7 { stroke: #5d4037; fill: #5d4037; }
        svg .run-line.c0, svg .run-line.c1, svg .run-line.c2, svg .run-line.c3, svg .run-line.c4, svg .run-line.c5, svg .run-line.c6, svg .run-line.c7 { fill: none; }
        .badge { font-size: .8em; font-weight: 600; padding: .05em .4em; border-radius: 3px; background: var(--head); }
        .badge.s-success { color: var(--ok); } .badge.s-failed, .badge.s-timedout, .badge.s-internal_error, .badge.s-upstream_failed { color: var(--bad); }
        .badge.s-running, .badge.s-pending, .badge.s-queued { color: var(--run); }
        rect.s-success { fill: #2e7d32; } rect.s-failed, rect.s-timedout, rect.s-internal_error { fill: #c62828; }
        rect.s-upstream_failed, rect.s-canceled, rect.s-upstream_canceled { fill: #ef9a9a; } rect.s-excluded, rect.s-skipped, rect.s-not_run { fill: #9e9e9e; }
        rect.s-running, rect.s-pending, rect.s-queued, rect.s-waiting_for_retry, rect.s-blocked { fill: #1565c0; }
        svg.dag text { fill: #fff; font-size: 12px; } svg.dag .edge { fill: none; stroke: var(--muted); stroke-width: 1.5; }
        svg.timeline text { fill: var(--fg); font-size: 12px; } table.matrix td.cell { text-align: left; } th.run-col { text-align: center; }
        td.null { color: var(--muted); font-style: italic; } form.sql { max-width: none; } textarea { font: 13px/1.4 ui-monospace, monospace;
          width: 100%; padding: .5em; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
        details { margin: .4em 0; } summary { cursor: pointer; }
        button.toggle { padding: 0 .4em; margin-right: .3em; font-size: 12px; background: none; color: var(--fg); border: 1px solid var(--line); }
        details.columns fieldset { border: 1px solid var(--line, #ccc); margin: .4em 0; display: flex; flex-wrap: wrap; gap: .3em 1em; max-height: 12em; overflow: auto; }
        details.columns .metric-choice { display: inline-flex; gap: .4em; }
        svg .series { fill: none; stroke-width: 1.6; stroke-linejoin: round; } svg .series:not(.run-line) { stroke: var(--accent); }
        svg .series.run-line { stroke-width: 1.4; } svg circle.dot { stroke: none; } svg circle.contour-run { fill: #fff; stroke: #222; stroke-width: 1.2; } svg circle.dot.accent { fill: var(--accent); }
        ul.legend { list-style: none; padding: 0; margin: .2em 0 0; display: flex; flex-wrap: wrap; gap: .2em .9em; font-size: 12px; }
        """

    /// `/`: the mlflow client's printed links (`/#/experiments/1/runs/abc`, `/#/models/m/versions/2`) to page
    /// paths; anything else to the experiment list.
    /// The runs table's nested runs: each parent gets a button that shows or hides its children (collapsed at
    /// first); without the script every child stays visible under its parent.
    static let runsTable = """
        (function () {
          function rows(attr, id) { return document.querySelectorAll('tr[' + attr + '~="' + id + '"]'); }
          function set(button, open) {
            var id = button.getAttribute("data-run");
            button.setAttribute("aria-expanded", open ? "true" : "false");
            button.textContent = (open ? "▾ " : "▸ ") + button.getAttribute("data-count");
            rows("data-ancestors", id).forEach(function (r) { r.hidden = true; });
            if (open) rows("data-parent", id).forEach(function (r) {
              r.hidden = false;
              var inner = r.querySelector("button.toggle");
              if (inner) set(inner, false);
            });
          }
          document.querySelectorAll("button.toggle").forEach(function (b) {
            set(b, false);
            b.addEventListener("click", function () { set(b, b.getAttribute("aria-expanded") !== "true"); });
          });
        })();
        """

    static let hashRoutes = """
        (function () {
          var hash = window.location.hash || "", to = "/ui/experiments", m;
          function part(s) { return encodeURIComponent(decodeURIComponent(s)); }
          if ((m = /^#\\/experiments\\/([^/?]+)(?:\\/runs\\/([^/?]+))?/.exec(hash))) {
            to += "/" + part(m[1]) + (m[2] ? "/runs/" + part(m[2]) : "");
          } else if ((m = /^#\\/models\\/([^/?]+)(?:\\/versions\\/([^/?]+))?/.exec(hash))) {
            to = "/ui/models/" + part(m[1]) + (m[2] ? "/versions/" + part(m[2]) : "");
          } else if (/^#\\/models\\/?$/.test(hash)) {
            to = "/ui/models";
          }
          window.location.replace(to);
        })();
        """
}
