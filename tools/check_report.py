"""Open a run's report.html in headless Chromium and check that it renders its table and images.

    python tools/check_report.py runs/demo/report.html [--screenshot shot.png]

Chromium loads a copy of the report with a small probe script appended (the report itself has no
script); the probe counts the results-table rows, the methods described and the images that decoded with
a non-zero size, and Chromium's --dump-dom prints them. Exit status 0 when every image rendered and the table has rows.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const rows = document.querySelectorAll('#results tbody tr');
  document.body.setAttribute('data-check', JSON.stringify({
    images: images.length,
    rendered: images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
    rows: rows.length,
    methods: [...rows].map(r => r.cells[1].textContent),
    described: [...document.querySelectorAll('#methods dt')].map(d => d.textContent),
  }));
});
</script>"""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check(report: Path, screenshot: Path | None = None) -> dict:
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found: apt-get install chromium")
    html = report.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "report.html"
        probe.write_text(html.replace("</body>", PROBE + "</body>"))
        profile = ["--user-data-dir=" + str(Path(tmp) / "profile")]
        out = subprocess.run([chromium, *FLAGS, *profile, "--dump-dom", probe.as_uri()], capture_output=True,
                             text=True, timeout=120)
        if screenshot is not None:
            subprocess.run([chromium, *FLAGS, *profile, f"--screenshot={screenshot.resolve()}",
                            "--window-size=1200,2400", report.resolve().as_uri()], capture_output=True, timeout=120)
    found = re.search(r"data-check=\"([^\"]*)\"", out.stdout)
    if not found:
        raise RuntimeError(f"the page did not finish loading in Chromium: {out.stderr.strip()[-300:]}")
    return json.loads(found.group(1).replace("&quot;", '"'))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    result = check(args.report, args.screenshot)
    ok = result["images"] > 0 and result["rendered"] == result["images"] and result["rows"] > 0
    print(f"{args.report}: {result['rows']} result rows, {result['rendered']}/{result['images']} images rendered"
          f" -> {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
