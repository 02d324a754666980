"""The built site works with no network, checked in a real browser (issue 22).

Every page of the site that the session builds once (the ``built_site`` fixture in
tests/conftest.py) is loaded in headless Chromium, served from localhost, with every
request to another host blocked. A page fails on a console error, a failed request, a
request to another host, an image that did not load, an internal link that does not
resolve, a formula MathJax could not typeset, or a raw markdown table or unrendered math
in its text. Two chapters are also opened from disk (file://), as a reader of the README
would. A static scan of the built files finds any script, style, font or image referenced
from another host.

The browser is Playwright for Python driving the distribution's Chromium
(``apt-get install chromium``; Playwright's own browser download is not needed). Without
Chromium the browser tests are skipped with a message saying how to install it, unless
``MOBILEOPT_REQUIRE_BROWSER=1`` (set by .ci/run), which turns the skip into a failure.
Screenshots of a few pages go to ``_build/screenshots/`` (or ``MOBILEOPT_SCREENSHOT_DIR``).
"""

from __future__ import annotations

import functools
import http.server
import importlib
import os
import re
import shutil
import threading
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import code_width

ROOT = Path(__file__).resolve().parents[1]

#: Hosts a page may load from: the local server only.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})

#: Pages screenshotted (top of page, first displayed formula, a table from the outputs).
SCREENSHOT_PAGES = ("book/intro.html", "notebooks/01_quantization.html", "notebooks/05_memory.html")

#: Launch flags for a sandbox-less container with no network.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

INSTALL_HINT = (
    "Chromium is needed for the browser test: install the distribution's package "
    "(Debian/Ubuntu: sudo apt-get install chromium) or set MOBILEOPT_CHROMIUM to a Chromium "
    "or Chrome executable; Playwright for Python comes with `make setup` (the test extra)."
)

# A table's rule row; Sphinx's smartquotes turn the "---" of one left in prose into an em dash.
_RAW_TABLE = re.compile(r"\|\s*:?(?:-{3,}|[\u2013\u2014]+):?\s*\|")
_RAW_MATH = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{")


def text_problems(text: str) -> list[str]:
    """Markdown and TeX that a page shows as text instead of rendering.

    Args:
        text: The page's visible prose and output text (code excluded).

    Returns:
        One message per kind of defect found: a raw markdown table rule (``|---|``, or
        ``|—|`` as Sphinx's smartquotes print it) or
        unrendered math (``\\(``, ``\\)``, ``\\[``, ``\\]``, ``$$``, ``\\begin{``), each with
        the text around its first occurrence; empty when there is none.
    """
    problems = []
    for what, pattern in (("raw markdown table", _RAW_TABLE), ("unrendered math", _RAW_MATH)):
        match = pattern.search(text)
        if match:
            around = " ".join(text[max(0, match.start() - 60) : match.end() + 60].split())
            problems.append(f"{what} in the page text: ...{around}...")
    return problems


class _AssetParser(HTMLParser):
    """Collects the URLs of the assets an HTML page loads (not its hyperlinks)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "style":
            self._in_style = True
        if attrs.get("style"):
            self.urls += [(f"<{tag} style>", url) for url in _css_urls(attrs["style"])]
        if tag == "link":
            rel = (attrs.get("rel") or "").lower().split()
            # A <link> loads something unless it only names another page.
            if attrs.get("href") and not set(rel) <= {"next", "prev", "canonical", "alternate", "author",
                                                      "license", "help", "search", "index", "top", "up"}:
                self.urls.append((f"<link rel={' '.join(rel)}>", attrs["href"]))
        for name in ("src", "data", "poster", "background"):
            if attrs.get(name) and tag in {"script", "img", "iframe", "embed", "object", "source", "video",
                                           "audio", "track", "input", "body", "table", "td"}:
                self.urls.append((f"<{tag} {name}>", attrs[name]))
        if attrs.get("srcset"):
            self.urls += [(f"<{tag} srcset>", part.split()[0]) for part in attrs["srcset"].split(",") if part.strip()]

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += [("<style>", url) for url in _css_urls(data)]


def _css_urls(css: str) -> list[str]:
    """The URLs a stylesheet loads: ``url(...)`` and ``@import "..."``."""
    urls = re.findall(r"""url\(\s*['"]?([^'")]+?)['"]?\s*\)""", css)
    urls += re.findall(r"""@import\s+['"]([^'"]+)['"]""", css)
    return urls


def _is_remote(url: str) -> bool:
    """True for an absolute or protocol-relative URL to a host (http, https, ftp, ws)."""
    url = url.strip().lower()
    return url.startswith("//") or re.match(r"(https?|ftp|wss?):", url) is not None


def external_asset_references(html_dir: Path) -> list[str]:
    """Every script, style, font, image or frame a built site loads from another host.

    Scans each ``.html`` file's tags (``<script src>``, ``<link rel=stylesheet|preload|icon>``,
    ``<img src|srcset>``, ``<iframe>``, ``<source>``, inline styles) and each ``.css`` file's
    ``url()`` and ``@import``. Hyperlinks (``<a href>``) are not assets and are not listed.

    Args:
        html_dir: The built site's ``_build/html`` folder.

    Returns:
        ``"<file>: <tag> <url>"`` for each reference to a remote URL; empty when there is none.
    """
    found = []
    for path in sorted(html_dir.rglob("*")):
        if path.suffix == ".html":
            parser = _AssetParser()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            refs = parser.urls
        elif path.suffix == ".css":
            refs = [("url()", url) for url in _css_urls(path.read_text(encoding="utf-8", errors="replace"))]
        else:
            continue
        found += [f"{path.relative_to(html_dir).as_posix()}: {tag} {url}" for tag, url in refs if _is_remote(url)]
    return found


def site_pages(html_dir: Path) -> list[str]:
    """The pages of a built site: every ``.html`` file outside ``_static`` and ``_sources``.

    Args:
        html_dir: The built site's ``_build/html`` folder.

    Returns:
        Their paths relative to ``html_dir``, with ``/`` separators, sorted.
    """
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if p.relative_to(html_dir).parts[0] not in ("_static", "_sources"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve(directory: Path):
    """Serves a folder over HTTP on localhost in a background thread.

    Args:
        directory: The folder to serve.

    Yields:
        The base URL, ``http://127.0.0.1:<port>/``.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Runs in the page once it has loaded: waits for MathJax and for every image, then returns
# the text to check (code cell sources, inline code and literal blocks left out; output
# text kept), the images that did not load, every link and every id.
_INSPECT_PAGE = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const skip = "script, style, noscript, template, textarea, code, .cell_input, "
             + "mjx-container, mjx-assistive-mml";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const pre = parent.closest("pre");
    if (pre && !pre.closest(".cell_output")) continue;
    parts.push(node.nodeValue);
  }
  const ids = Array.from(document.querySelectorAll("[id]"), e => e.id)
    .concat(Array.from(document.querySelectorAll("a[name]"), e => e.getAttribute("name")));
  return {
    text: parts.join(" "),
    brokenImages: images.filter(img => !img.complete || img.naturalWidth === 0)
                        .map(img => img.getAttribute("src")),
    links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
    ids: ids,
    math: document.querySelectorAll("mjx-container").length,
    mathErrors: Array.from(document.querySelectorAll("mjx-merror"), e => e.getAttribute("data-mjx-error") || "?"),
  };
}
"""


def check_site(browser, html_dir: Path, pages=None, screenshot_dir: Path | None = None,
               screenshot_pages=()) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Loads pages of a built site in a browser, offline, and lists what is wrong with each.

    The site is served from localhost; every request to another host is blocked and
    reported. After each page has loaded (MathJax typeset, images decoded, network idle)
    it is checked for console errors and uncaught exceptions, failed requests (including
    HTTP status 400 and above), requests to other hosts, images with ``naturalWidth == 0``,
    formulas MathJax could not typeset (``mjx-merror``), raw markdown tables and unrendered
    math in its text (:func:`text_problems`). Once every
    page is loaded, each link to the local server is resolved: its file must exist and its
    ``#fragment``, if any, must name an element of the target page.

    Args:
        browser: A Playwright ``Browser``.
        html_dir: The built site's ``_build/html`` folder.
        pages: Paths relative to ``html_dir`` to load; every page (:func:`site_pages`)
            when None.
        screenshot_dir: Where to save screenshots; none are taken when None.
        screenshot_pages: Pages to screenshot: ``<name>.png`` (top of the page) and, where
            the page has them, ``<name>-math.png`` (its first displayed formula) and
            ``<name>-table.png`` (a table from its cell outputs).

    Returns:
        ``(problems, math)``: ``{page: [message, ...]}`` for every page loaded (an empty list
        for a page with no problem), and ``{page: number of MathJax-rendered formulas}``.
    """
    pages = site_pages(html_dir) if pages is None else list(pages)
    problems: dict[str, list[str]] = {page: [] for page in pages}
    math: dict[str, int] = {}
    ids: dict[str, set[str]] = {}
    links: dict[str, list[str]] = {}
    with serve(html_dir) as base:
        origin = urlsplit(base).netloc
        context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        current: list[str] = []

        def record(message):
            problems[current[0]].append(message)

        def block_other_hosts(route):
            url = route.request.url
            parts = urlsplit(url)
            if parts.scheme in ("http", "https", "ws", "wss", "ftp") and parts.hostname not in LOCAL_HOSTS:
                record(f"request to another host: {url}")
                route.abort("blockedbyclient")
            else:
                route.continue_()

        def on_console(message):
            if message.type == "error":
                record(f"console error: {message.text}")

        def on_request_failed(request):
            # A blocked request to another host is reported once, by block_other_hosts.
            if urlsplit(request.url).hostname in LOCAL_HOSTS:
                record(f"failed request: {request.url} ({request.failure})")

        def on_response(response):
            if response.status >= 400:
                record(f"failed request: {response.url} (HTTP {response.status})")

        context.route("**/*", block_other_hosts)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: record(f"uncaught exception: {error}"))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        try:
            for name in pages:
                current[:] = [name]
                page.goto(base + name, wait_until="load")
                page.wait_for_load_state("networkidle")
                found = page.evaluate(_INSPECT_PAGE)
                problems[name] += text_problems(found["text"])
                problems[name] += [f"image did not load: {src} (naturalWidth 0)" for src in found["brokenImages"]]
                problems[name] += [f"MathJax error: {error}" for error in found["mathErrors"]]
                ids[name] = set(found["ids"])
                links[name] = found["links"]
                math[name] = found["math"]
                if screenshot_dir is not None and name in screenshot_pages:
                    _screenshots(page, screenshot_dir, name)
        finally:
            context.close()
    for name, hrefs in links.items():
        for href in hrefs:
            parts = urlsplit(href)
            if parts.scheme not in ("http", "https") or parts.netloc != origin:
                continue  # hyperlinks to other sites are prose, not assets: not loaded here
            target = unquote(parts.path.lstrip("/"))
            if target == "" or target.endswith("/"):
                target += "index.html"
            path = html_dir / target
            if not path.is_file():
                problems[name].append(f"link to a missing file: {href}")
            elif parts.fragment and target.endswith(".html"):
                anchors = ids.get(target)
                if anchors is None:
                    anchors = set(re.findall(r"""\b(?:id|name)=["']([^"']+)""", path.read_text(encoding="utf-8")))
                if unquote(parts.fragment) not in anchors:
                    problems[name].append(f"link to a missing anchor: {href}")
    return problems, math


#: The laptop screen the book's code width is made for (_static/code-width.css).
LAPTOP_VIEWPORT = {"width": 1366, "height": 768}

# Every code cell's input shown on the page whose text is wider than its box: the reader
# would have to scroll it sideways. Cells hidden (hide-input: inside a closed <details>)
# are not shown.
_OVERFLOWING_CODE = """
() => Array.from(document.querySelectorAll(".cell_input pre"))
  .filter(pre => pre.checkVisibility() && pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => {
    const longest = pre.textContent.split("\\n").reduce((a, b) => (b.length > a.length ? b : a), "");
    return `code cell scrolls sideways (${pre.scrollWidth} px of text in a ${pre.clientWidth} px box, `
         + `longest line ${longest.length} characters: ${longest.trim().slice(0, 60)})`;
  })
"""


def overflowing_code(browser, html_dir: Path, pages=None, viewport=None) -> dict[str, list[str]]:
    """The code cells that do not fit their box, page by page, at a laptop's screen size.

    Each page is loaded from localhost in a window of ``viewport`` (1366 x 768 px by
    default, :data:`LAPTOP_VIEWPORT`); every code cell input shown (``.cell_input pre``
    for which ``checkVisibility()`` is true) whose ``scrollWidth`` exceeds its ``clientWidth`` is reported.
    Outputs (tables, printed text) may be wider and are not checked.

    Args:
        browser: A Playwright ``Browser``.
        html_dir: The built site's ``_build/html`` folder.
        pages: Paths relative to ``html_dir``; every page (:func:`site_pages`) when None.
        viewport: ``{"width": px, "height": px}``; :data:`LAPTOP_VIEWPORT` when None.

    Returns:
        ``{page: [message, ...]}`` for every page loaded, each message giving the box's
        and the text's widths and the longest line; an empty list where all fit.
    """
    pages = site_pages(html_dir) if pages is None else list(pages)
    found: dict[str, list[str]] = {}
    with serve(html_dir) as base:
        context = browser.new_context(viewport=viewport or LAPTOP_VIEWPORT, service_workers="block")
        context.route("**/*", lambda route: route.abort("blockedbyclient")
                      if urlsplit(route.request.url).hostname not in LOCAL_HOSTS else route.continue_())
        page = context.new_page()
        try:
            for name in pages:
                page.goto(base + name, wait_until="load")
                page.wait_for_function("document.fonts.status === 'loaded'")
                found[name] = page.evaluate(_OVERFLOWING_CODE)
        finally:
            context.close()
    return found


def _screenshots(page, directory: Path, name: str):
    """Saves the top of the page, its first displayed formula and a table from its outputs.

    The table is the second one in the cell outputs where there are two (the first is the
    machine card every chapter opens with). Screenshots of the page left by an earlier run
    are removed first, so that none is stale.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = name.removesuffix(".html").replace("/", "_")
    for old in (f"{stem}.png", f"{stem}-math.png", f"{stem}-table.png"):
        (directory / old).unlink(missing_ok=True)
    page.screenshot(path=str(directory / f"{stem}.png"))
    tables = page.locator(".cell_output table")
    for suffix, element in (("math", page.locator('mjx-container[display="true"]').first),
                            ("table", tables.nth(1) if tables.count() > 1 else tables.first)):
        if element.count():
            element.scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, -200)")
            page.screenshot(path=str(directory / f"{stem}-{suffix}.png"))


def _chromium() -> str | None:
    """The Chromium executable: ``MOBILEOPT_CHROMIUM``, else ``chromium`` on the PATH; None if absent."""
    if os.environ.get("MOBILEOPT_CHROMIUM"):
        return shutil.which(os.environ["MOBILEOPT_CHROMIUM"])
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str):
    """Skips a browser test, or fails it where a browser is required (CI)."""
    message = f"{reason}. {INSTALL_HINT}"
    if os.environ.get("MOBILEOPT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MOBILEOPT_REQUIRE_BROWSER=1 and {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright, for this module's tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium executable was found (neither MOBILEOPT_CHROMIUM nor the PATH names one)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


# Fast checks of the checkers, on planted text and pages.

def test_text_problems_finds_raw_tables_and_unrendered_math():
    assert text_problems("Accuracy 91.2 % on 1,000 images; the table below.") == []
    assert text_problems("a | b | c") == []  # a pipe in prose is not a table
    for raw in ("| model | size |\n|---|---|\n| a | 1 |", "| a | b |\n|:---|---:|", "| x |\n| --- |",
                "| item | value |\n|\u2014|\u2014|", "| a |\n|:\u2013|"):
        assert [p.split(" in ")[0] for p in text_problems(raw)] == ["raw markdown table"], raw
    for raw in (r"the scale \(s\) is", r"\[ q = x / s + z \]", "$$E_q$$", r"\begin{aligned} a \end{aligned}"):
        assert [p.split(" in ")[0] for p in text_problems(raw)] == ["unrendered math"], raw


def test_external_asset_references_finds_planted_references(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "clean.html").write_text(
        '<link rel="stylesheet" href="_static/a.css"><script src="_static/a.js"></script>'
        '<p>See <a href="https://www.tensorflow.org/lite">the docs</a>.</p><link rel="next" href="https://x.org/n">'
        '<img src="_images/a.png">'
    )
    (tmp_path / "_static" / "a.css").write_text('@font-face { src: url("fonts/a.woff2"); }')
    assert external_asset_references(tmp_path) == []
    (tmp_path / "bad.html").write_text(
        '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">'
        '<img srcset="a.png 1x, http://example.org/b.png 2x"><div style="background: url(https://e.org/x.png)">'
        "<style>@import 'https://e.org/s.css';</style>"
    )
    (tmp_path / "_static" / "b.css").write_text("@font-face { src: url(https://fonts.gstatic.com/x.woff2); }")
    found = external_asset_references(tmp_path)
    assert len(found) == 6, found
    assert all(f.startswith(("bad.html: ", "_static/b.css: ")) for f in found), found


def test_browser_check_catches_each_planted_defect(browser, tmp_path):
    # One tiny page per defect; each must be reported with its own message, and only it.
    (tmp_path / "sub").mkdir()
    (tmp_path / "ok.png").write_bytes(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
    pages = {
        "clean.html": '<h1 id="top">Fine</h1><img src="ok.png"><p>| a | b |</p><a href="sub/other.html#x">x</a>'
                      '<a href="#top">top</a><pre><code>"|---|---|"  r"\\(x\\)"</code></pre>'
                      '<a href="https://example.org/">an outside hyperlink is prose</a>',
        "sub/other.html": '<p id="x">other</p>',
        "table.html": "<p>| model | size |</p><p>|---|---|</p>",
        "smarttable.html": "<p>| item | value |\n|\u2014|\u2014|\n| CPU | AMD EPYC |</p>",  # as the old site showed
        "math.html": '<span class="math">\\(E_q = s (q - z)\\)</span>',
        "output.html": '<div class="cell_output"><pre>| a |\n|---|</pre></div>',
        "external.html": '<script src="https://cdn.example.invalid/mathjax.js"></script>',
        "console.html": '<script>console.error("planted")</script>',
        "exception.html": "<script>undefinedFunction()</script>",
        "image.html": '<img src="missing.png">',
        "brokenimage.html": '<img src="bad.png">',
        "link.html": '<a href="nowhere.html">x</a>',
        "anchor.html": '<a href="sub/other.html#nothing">x</a>',
    }
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<!doctype html><html><head><meta charset='utf-8'></head>"
                                     f"<body>{body}</body></html>")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    # The MathJax the site bundles, on one page that typesets and one it cannot.
    bundle = Path(importlib.import_module("sphinx-mathjax-offline").__file__).parent / "static" / "mathjax"
    shutil.copytree(bundle, tmp_path / "mathjax")
    mathjax = '<script defer src="mathjax/tex-chtml.js"></script>'
    (tmp_path / "mathok.html").write_text(f"{mathjax}<p>The scale \\(s = \\frac{{x}}{{q}}\\) and</p>"
                                          f"\\[E_q = s\\,(q - z)\\]")
    (tmp_path / "matherror.html").write_text(f"{mathjax}<p>\\(x^1^2\\)</p>")  # TeX: "Double exponent"
    problems, math = check_site(browser, tmp_path, pages=[*pages, "mathok.html", "matherror.html"])
    assert math["mathok.html"] == 2 and problems["mathok.html"] == [], problems["mathok.html"]
    assert [p.split(":")[0] for p in problems["matherror.html"]] == ["MathJax error"], problems["matherror.html"]
    expected = {
        "clean.html": [], "sub/other.html": [],
        "table.html": ["raw markdown table"], "smarttable.html": ["raw markdown table"],
        "output.html": ["raw markdown table"], "math.html": ["unrendered math"],
        # Chromium also logs a blocked or missing resource as a console error.
        "external.html": ["request to another host", "console error"], "console.html": ["console error"],
        "exception.html": ["uncaught exception"],
        "image.html": ["failed request", "console error", "image did not load"],
        "brokenimage.html": ["image did not load"], "link.html": ["link to a missing file"],
        "anchor.html": ["link to a missing anchor"],
    }
    for name, kinds in expected.items():
        found = problems[name]
        assert sorted({p.split(":")[0].split(" in the page")[0] for p in found}) == sorted(kinds), (name, found)


def test_built_site_has_no_external_asset_references(built_site):
    if built_site.returncode != 0:
        pytest.fail("the site did not build (see test_book_builds_with_warnings_as_errors):\n" + built_site.output)
    assert external_asset_references(built_site.html) == []


def test_every_page_works_offline_in_chromium(built_site, browser):
    if built_site.returncode != 0:
        pytest.fail("the site did not build (see test_book_builds_with_warnings_as_errors):\n" + built_site.output)
    screenshots = Path(os.environ.get("MOBILEOPT_SCREENSHOT_DIR", ROOT / "_build" / "screenshots"))
    problems, math = check_site(browser, built_site.html, screenshot_dir=screenshots, screenshot_pages=SCREENSHOT_PAGES)
    assert len(problems) >= 12, sorted(problems)
    bad = {page: found for page, found in problems.items() if found}
    assert not bad, "\n".join(f"{page}:\n  " + "\n  ".join(found[:10]) for page, found in bad.items())
    # Math is rendered where the chapters have it (MathJax turns each formula into an
    # mjx-container; a page whose MathJax did not load would fail the text check above).
    for page in ("book/concepts.html", "notebooks/01_quantization.html"):
        assert math.get(page, 0) > 0, f"no rendered formula on {page}"
    for page in SCREENSHOT_PAGES:
        assert (screenshots / f"{page.removesuffix('.html').replace('/', '_')}.png").is_file(), page


def test_chapters_opened_from_disk_render(built_site, browser):
    # The README tells readers to open _build/html/index.html: from file:// URLs (no
    # server) the math, with MathJax's fonts, and the tables render too.
    if built_site.returncode != 0:
        pytest.fail("the site did not build (see test_book_builds_with_warnings_as_errors):\n" + built_site.output)
    page = browser.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        for name in ("book/concepts.html", "notebooks/01_quantization.html"):
            page.goto((built_site.html / name).as_uri(), wait_until="load")
            found = page.evaluate(_INSPECT_PAGE)
            page.wait_for_function("document.fonts.status === 'loaded'")
            fonts = page.evaluate("Array.from(document.fonts, f => [f.family, f.status])")
            assert found["math"] > 0 and not found["mathErrors"], name
            assert text_problems(found["text"]) == [] and found["brokenImages"] == [], name
            assert [family for family, status in fonts if family.startswith("MJX") and status == "loaded"], name
            assert not [family for family, status in fonts if status == "error"], (name, fonts)
            assert errors == [], (name, errors)
    finally:
        page.close()


def test_overflow_check_catches_a_planted_long_line(browser, tmp_path):
    # A code cell in a box of 400 px: a long line overflows it, a short one does not; a
    # long line in a hidden cell or in an output is not the reader's problem here.
    cell = '<div class="cell_input"><div class="highlight"><pre style="width: 400px">{}</pre></div></div>'
    long_line = "result = " + " + ".join(f"value_{i}" for i in range(20))
    pages = {
        "fits.html": cell.format("x = 1\ny = 2"),
        "long.html": cell.format("x = 1\n" + long_line),
        "hidden.html": f'<details class="hide above-input"><summary>show</summary>{cell.format(long_line)}</details>',
        "output.html": f'<div class="cell_output"><pre style="width: 400px">{long_line}</pre></div>',
    }
    for name, body in pages.items():
        (tmp_path / name).write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    found = overflowing_code(browser, tmp_path, pages=list(pages))
    assert found["fits.html"] == found["hidden.html"] == found["output.html"] == [], found
    assert len(found["long.html"]) == 1 and f"longest line {len(long_line)} characters" in found["long.html"][0], found


def test_no_code_cell_scrolls_sideways_on_a_laptop_screen(built_site, browser):
    # The notebooks' code is formatted to the book's width (tests/code_width.py) and the
    # site's code font lets that width fit at 1366 px (_static/code-width.css).
    if built_site.returncode != 0:
        pytest.fail("the site did not build (see test_book_builds_with_warnings_as_errors):\n" + built_site.output)
    # Planted in a real chapter page (the theme's layout and _static/code-width.css): a
    # cell with a line of exactly the book's width fits, one a little longer is reported.
    width = code_width.WIDTH
    fits, long = "fits = '" + "a" * (width - 9) + "'", "long = '" + "b" * (width + 3) + "'"
    cell = ('<div class="cell docutils container"><div class="cell_input docutils container">'
            '<div class="highlight-ipython3 notranslate"><div class="highlight"><pre><span></span>{}'
            "</pre></div></div></div></div>")
    chapter = (built_site.html / "notebooks" / "02_pruning.html").read_text(encoding="utf-8")
    at = chapter.index('<div class="cell docutils container">')
    planted = built_site.html / "notebooks" / "planted-overflow.html"
    planted.write_text(chapter[:at] + cell.format(fits) + cell.format(long) + chapter[at:], encoding="utf-8")
    try:
        messages = overflowing_code(browser, built_site.html, pages=["notebooks/planted-overflow.html"])
    finally:
        planted.unlink()
    messages = messages["notebooks/planted-overflow.html"]
    assert len(fits) == width and any(f"longest line {len(long)} characters: long = " in m for m in messages), messages
    assert not any("fits = " in m for m in messages), messages
    found = overflowing_code(browser, built_site.html)
    assert len(found) >= 12, sorted(found)
    bad = {page: messages for page, messages in found.items() if messages}
    assert not bad, f"code cells wider than their box at {LAPTOP_VIEWPORT['width']} px:\n" + "\n".join(
        f"{page}: {len(messages)} cell(s)\n  " + "\n  ".join(messages[:10]) for page, messages in bad.items())
