"""The registration pages in a real browser: nothing sticks out sideways at 400 or 1280 px.

Every page the registration flow renders is built through its routes (as in
test_registration.py), filled with the longest values it can meet (App and organization names
at GitHub's limits, a long public address and GitHub Enterprise host, a long `.env` path), and
laid out by headless Chromium. All the pages go into one browser start, each in an iframe of
the tested width (media queries answer to an iframe's own width), so the test stays at a few
seconds.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.registration import registration_routes
from bot.settings import load_settings
from tests.simulator import GitHubSimulator, generate_private_key
from tests.test_registration import APP_YML, NO_CREDENTIALS, TOKEN, form_of, open_page, state_of

WIDTHS = (400, 1280)
HEIGHT = 900

LONG_NAME = "platform-backend-bot-for-acme-corp"  # 34 characters, GitHub's limit for an App
LONG_ORG = "acme-platform-engineering-department-01"  # 39, GitHub's limit for a login
LONG_PUBLIC_URL = "https://backend-bot.platform-engineering.acme-corporation.example.com"
LONG_GHE = "github.platform-engineering.acme-corporation.example.com"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no chromium on this machine: `scripts/bootstrap test`, run as root on "
                    "Debian, installs the `chromium` package")
    return found


def client(tmp_path: Path, sim: GitHubSimulator | None = None, *, env_path: Path | None = None,
           manifest_path: Path = APP_YML, **overrides) -> TestClient:
    # No model key: the page after registration then has its longest list of steps.
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data",
                             **{**NO_CREDENTIALS, "anthropic_api_key": None, **overrides})
    routes = registration_routes(
        settings,
        env_path=env_path or tmp_path / ".env",
        manifest_path=manifest_path,
        transport=sim.transport() if sim else None,
        setup_token=TOKEN,
    )
    return TestClient(Starlette(routes=routes))


def sim_with_code(tmp_path: Path, **kwargs) -> GitHubSimulator:
    sim = GitHubSimulator(tmp_path / "github", **kwargs)
    sim.add_manifest_code("good-code", slug=LONG_NAME, name=LONG_NAME, owner=LONG_ORG)
    return sim


def callback(c: TestClient, code: str | None = "good-code") -> str:
    state = state_of(form_of(open_page(c).text)[0])
    params = {"state": state} | ({"code": code} if code else {})
    return c.get("/setup/callback", params=params).text


def rendered_pages(tmp: Path) -> dict[str, str]:
    """Each page of the flow, by name, as the bot serves it."""
    pages: dict[str, str] = {}

    def fresh(name: str) -> Path:
        path = tmp / name
        path.mkdir()
        return path

    c = client(fresh("plain"))
    pages["register"] = open_page(c).text

    c = client(fresh("local"))
    pages["register, local address, long names"] = open_page(
        c, headers={"host": "127.0.0.1:3000"}, name=LONG_NAME, org=LONG_ORG
    ).text

    c = client(fresh("public"), public_url=LONG_PUBLIC_URL, ghe_host=LONG_GHE,
               webhook_path="/api/github/webhooks/backend-bot")
    pages["register, long public address and GHE host"] = open_page(c, name=LONG_NAME, org=LONG_ORG).text

    c = client(fresh("refused"))
    pages["register, refused org and name"] = open_page(c, org="not/an-org-" + "x" * 80, name="n" * 90).text

    c = client(fresh("locked"))
    pages["locked"] = c.get("/").text
    pages["locked, wrong token"] = c.get("/", params={"token": "wrong"}).text
    c = client(fresh("locked-public"), public_url=LONG_PUBLIC_URL)
    pages["locked, long public address"] = c.get("/").text

    deep = fresh("created") / "srv" / "backend-bot" / "configuration-of-the-platform-team" / "data"
    deep.mkdir(parents=True)
    c = client(tmp / "created", sim_with_code(tmp / "created-sim"), env_path=deep / ".env")
    pages["created"] = callback(c)
    pages["already registered"] = c.get("/setup/callback", params={"code": "x", "state": "y"}).text

    pem = generate_private_key()
    c = client(fresh("running"), app_id=1234567, private_key=pem, webhook_secret="s", ghe_host=LONG_GHE)
    pages["running, no recorded App"] = c.get("/").text
    # The bot restarted as the App registered above, whose record gives its name and install link.
    recorded = json.loads((tmp / "created" / "data" / "github-app.json").read_text())
    c = client(tmp / "created", app_id=recorded["id"], private_key=pem, webhook_secret="s")
    pages["running, recorded App"] = page = c.get("/").text
    assert LONG_NAME in page and "/installations/new" in page

    c = client(fresh("expired"))
    pages["state expired"] = c.get("/setup/callback", params={"code": "x", "state": "y"}).text
    c = client(fresh("no-code"), sim_with_code(tmp / "no-code-sim"))
    pages["no code"] = callback(c, code=None)
    c = client(fresh("refused-code"), sim_with_code(tmp / "refused-sim"))
    pages["exchange failed, refused"] = callback(c, code="stale-code")
    sim = sim_with_code(tmp / "unreachable-sim", web_url=f"https://{LONG_GHE}")
    sim.drop_next(path="/app-manifests/")
    c = client(fresh("unreachable"), sim, ghe_host=LONG_GHE)
    pages["exchange failed, unreachable"] = callback(c)
    unwritable = fresh("unwritable") / "srv" / "backend-bot" / "configuration-of-the-platform-team" / ".env"
    unwritable.mkdir(parents=True)  # a folder where the file should be: writing it fails
    c = client(tmp / "unwritable", sim_with_code(tmp / "unwritable-sim"), env_path=unwritable)
    pages["env not written"] = callback(c)
    missing = fresh("no-app-yml") / "srv" / "backend-bot" / "configuration-of-the-platform-team" / "app.yml"
    pages["app.yml missing"] = open_page(client(tmp / "no-app-yml", manifest_path=missing)).text

    titles = {name: re.search(r"<title>(.*)</title>", page).group(1) for name, page in pages.items()}
    # each template is in the set, so a page added to the flow without a case here shows up
    assert set(titles.values()) >= {
        "Register backend-bot", "backend-bot is not configured", "GitHub App created",
        "backend-bot is running", "Already registered", "app.yml is missing",
        "Could not save the credentials", "Registration failed", "No registration code",
        "Registration link expired",
    }, titles
    return pages


# Run in the page holding the iframes once they have all loaded. Besides the page's own
# scroll width, it names each element reaching past the card's content box (or, outside the
# card, past the viewport): text poking out of the card is broken too, even where the page's
# margin hides it from scrollWidth.
MEASURE = """
addEventListener('load', () => {
  const name = (node) => {
    const el = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
    return (node === el ? '' : 'text in ') + el.tagName.toLowerCase()
      + (el.className ? '.' + el.className : '') + ' "' + node.textContent.trim().slice(0, 60) + '"';
  };
  const results = {};
  for (const frame of document.querySelectorAll('iframe')) {
    const doc = frame.contentDocument, root = doc.documentElement;
    const card = doc.querySelector('.card');
    let cardRight = root.clientWidth;
    if (card) {
      const style = getComputedStyle(card);
      cardRight = card.getBoundingClientRect().right
        - parseFloat(style.borderRightWidth) - parseFloat(style.paddingRight);
    }
    const sticking = [];
    // Text nodes too: a word too long for its box overflows it without widening the box.
    const walk = doc.createTreeWalker(doc.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      let box;
      if (node.nodeType === Node.TEXT_NODE) {
        if (!node.textContent.trim()) continue;
        const range = doc.createRange();
        range.selectNodeContents(node);
        box = range.getBoundingClientRect();
      } else {
        box = node.getBoundingClientRect();
      }
      const limit = card && card.contains(node) && node !== card ? cardRight : root.clientWidth;
      if (box.right > limit + 0.5) {
        sticking.push(name(node) + ' reaches ' + box.right.toFixed(1) + ' > ' + limit.toFixed(1));
      }
    }
    results[frame.id] = {innerWidth: frame.contentWindow.innerWidth, clientWidth: root.clientWidth,
                         scrollWidth: root.scrollWidth, sticking: sticking};
  }
  document.getElementById('result').textContent = JSON.stringify(results);
});
"""

# Proves the measurement sees an overflow at all (a script that did not run, or frames
# measured before layout, would otherwise pass every page).
CONTROL = '<!doctype html><body style="margin:0"><div class="card"><p style="width:2000px">wide</p></div>'


def measure(pages: dict[str, str], tmp: Path) -> dict[str, dict]:
    frames = []
    ids = {}
    for width in WIDTHS:
        for name, page in [*pages.items(), ("control", CONTROL)]:
            frame_id = f"f{len(ids)}"
            ids[frame_id] = (name, width)
            frames.append(f'<iframe id="{frame_id}" width="{width}" height="{HEIGHT}" '
                          f'style="border:0;display:block" srcdoc="{html.escape(page)}"></iframe>')
    host = tmp / "pages.html"
    host.write_text(f'<!doctype html><html><body style="margin:0">{"".join(frames)}'
                    f'<pre id="result"></pre><script>{MEASURE}</script></body></html>')
    args = [
        chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # Overlay scrollbars, as on a phone: the viewport keeps the full width.
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,1000",
        "--virtual-time-budget=5000", "--dump-dom", host.as_uri(),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LANG": "C.UTF-8"})
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), (
        f"chromium gave no measurement ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    measured = json.loads(html.unescape(found.group(1)))
    return {f"{ids[key][0]} at {ids[key][1]} px": {"width": ids[key][1], **value}
            for key, value in measured.items()}


def test_no_registration_page_overflows_sideways(tmp_path):
    chromium()
    pages = rendered_pages(tmp_path)
    measured = measure(pages, tmp_path)
    assert len(measured) == (len(pages) + 1) * len(WIDTHS)

    for width in WIDTHS:
        control = measured[f"control at {width} px"]
        assert control["scrollWidth"] > width and control["sticking"], control

    problems = {}
    for key, m in measured.items():
        if key.startswith("control"):
            continue
        assert m["innerWidth"] == m["clientWidth"] == m["width"], (key, m)
        if m["scrollWidth"] > m["clientWidth"] or m["sticking"]:
            problems[key] = m
    assert not problems, json.dumps(problems, indent=1)
