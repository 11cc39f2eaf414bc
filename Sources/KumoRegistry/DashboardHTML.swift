import Foundation

/// The HTML around the dashboard's pages: one stylesheet and one small script, both inline (the
/// dashboard loads nothing from elsewhere).
enum DashboardHTML {
    /// A whole page titled `title` with `body`; `live` (run number → metrics lines shown) makes the
    /// page poll those runs and redraw its charts while they train.
    static func page(_ title: String, _ body: String, live: [Int: Int] = [:]) -> String {
        let liveRuns = live.keys.sorted().map { "\"\($0)\":\(live[$0]!)" }.joined(separator: ",")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escapeXML(title))</title>
            <style>\(style)</style></head>
            <body><header><a href="/">Kumo runs</a></header>
            <main>\(body)</main>
            <script>const live = {\(liveRuns)};\n\(script)</script>
            </body></html>
            """
    }

    /// A table cell's text for `value` (`-` for nil).
    static func cell(_ value: Double?, _ format: String = "%.4f") -> String {
        value.map { String(format: format, $0) } ?? "-"
    }

    /// A time as `2026-01-31 12:34` (UTC).
    static func time(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: date)
    }

    /// A coloured badge of a run's status.
    static func status(_ status: RunStatus) -> String {
        #"<span class="status \#(status.rawValue)">\#(status.rawValue)</span>"#
    }

    static let style = """
        body{font-family:system-ui,sans-serif;margin:0 1em 2em;color:#222;font-size:14px}
        header{padding:.8em 0;border-bottom:1px solid #ddd;margin-bottom:1em}
        header a{font-weight:bold;font-size:18px;color:#1f77b4;text-decoration:none}
        table{border-collapse:collapse}th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right}td{white-space:nowrap}
        th{background:#f4f6f8;position:sticky;top:0}th a{color:#222;text-decoration:none}
        td.text,th.text{text-align:left}tr.group td{background:#eef3f8;text-align:left;font-weight:bold}
        .status{padding:1px 6px;border-radius:8px;font-size:12px;color:#fff}
        .running{background:#1f77b4}.completed{background:#2ca02c}.failed{background:#d62728}.killed{background:#7f7f7f}
        form.filters{margin-bottom:1em}form.filters label{margin-right:1em}
        .charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #e4e4e4;padding:4px}
        figcaption{text-align:right;font-size:12px}figcaption a,figcaption button{margin-left:.6em}
        pre{background:#f7f7f7;padding:.6em;overflow:auto;max-height:30em}.swatch{display:inline-block;width:14px;height:4px}
        """

    /// Saves a chart as PNG (its SVG drawn onto a canvas at twice the size) and, while `live` runs
    /// train, asks for their new metrics lines every 5 s (`?from=` the lines it has) and, when there are
    /// some or the runs have ended, redraws the page's `main` (charts and summary) from the server.
    static let script = """
        function savePNG(button) {
          const fig = button.closest('figure'), svg = fig.querySelector('svg'), img = new Image();
          img.onload = () => {
            const c = document.createElement('canvas');
            c.width = svg.width.baseVal.value * 2; c.height = svg.height.baseVal.value * 2;
            c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
            c.toBlob(b => {
              const a = document.createElement('a');
              a.href = URL.createObjectURL(b); a.download = fig.dataset.name + '.png'; a.click();
            }, 'image/png');
          };
          img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(new XMLSerializer().serializeToString(svg));
        }
        async function poll() {
          let changed = false, running = false;
          try {
            for (const run of Object.keys(live)) {
              const lines = await (await fetch('/api/runs/' + run + '/metrics?from=' + live[run])).json();
              live[run] += lines.length; changed = changed || lines.length > 0;
              running = running || (await (await fetch('/api/runs/' + run)).json()).status === 'running';
            }
            if (changed || !running) {
              const page = await (await fetch(location.href)).text();
              document.querySelector('main').replaceWith(new DOMParser().parseFromString(page, 'text/html').querySelector('main'));
            }
          } catch (e) { running = true; }
          if (running) setTimeout(poll, 5000);
        }
        if (Object.keys(live).length) setTimeout(poll, 5000);
        """
}
