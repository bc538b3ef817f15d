#!/usr/bin/env python3
"""Document generators for the technical and reference sources added for the second default model.

Used by clean_corpus.py (standard library only, plus the `pod2text` and `man` programs that
Debian's perl and man-db packages provide). Each generator yields (source, name, paragraphs).
ROOT is the folder into which fetch_corpus.sh unpacked the .deb files (`dpkg -x`).

  pydoc      python3.11-doc: the reStructuredText sources of the Python 3.11 documentation
             (html/_sources/**/*.rst.txt), one document per page.          PSF licence
  linuxdoc   linux-doc-6.1: the kernel's Documentation/ as reStructuredText
             (html/_sources/**/*.rst.txt), one document per page.          GPL-2
  pgdoc      postgresql-doc-15: the HTML manual, one document per page.    PostgreSQL licence
  sqlitedoc  sqlite3-doc: the HTML documentation, one document per page.   public domain
  handbook   debian-handbook (en-US HTML only), one document per page.     GPL-2+ / CC-BY-SA 3.0
  debref     debian-reference-en (HTML), one document per page.            GPL-2+
  rustdoc    rust-doc: the books only (book, reference, nomicon, rust-by-example,
             edition-guide, embedded-book, rustc, rustdoc, cargo, unstable-book; not the
             generated API pages), one document per page.                  MIT / Apache-2.0
  gitdoc     git-doc: the AsciiDoc *.txt manual pages and guides.          GPL-2
  bashdoc    bash-doc: the Bash reference manual (HTML), one document per section. GPL-3+
  perldoc    perl-doc: every .pod under /usr/share/perl/*/pod, via pod2text. Artistic / GPL-1+
  manpages   manpages, manpages-dev: sections 1-8, rendered with `man -l` (plain text,
             no hyphenation or justification), one document per page.  see their copyright
  wordnet    dict-wn: WordNet 3.0 in dictd form, one document per head word (glosses,
             examples, synonym/antonym/hypernym pointers as printed by dictd).  WordNet licence
  foldoc     dict-foldoc: Free On-line Dictionary of Computing, one entry per document. GFDL
  jargon     dict-jargon: the Jargon File 4.4.7, one entry per document.  public domain
  devil      dict-devil: Ambrose Bierce's The Devil's Dictionary.         public domain

Markup is removed, paragraphs are joined from wrapped lines; code blocks (indented or <pre>)
are kept as they are, each as one paragraph, since a technical reader sees code in such pages.
gnu-standards (the GNU Coding Standards) is deliberately NOT a training source: one of its
pages is the out-of-corpus technical text of the model card's perplexity table.
"""
import glob
import gzip
import html
import html.parser
import os
import re
import subprocess

# ---------------------------------------------------------------- shared helpers
def _paras_from_lines(lines):
    """Join wrapped prose lines into paragraphs; keep indented blocks verbatim."""
    paras, cur, code = [], [], []

    def flush_cur():
        if cur:
            t = re.sub(r"\s+", " ", " ".join(cur)).strip()
            if t:
                paras.append(t)
            cur.clear()

    def flush_code():
        if code:
            while code and not code[-1].strip():
                code.pop()
            if code:
                paras.append("\n".join(code))
            code.clear()

    for line in lines:
        line = line.rstrip()
        if not line.strip():
            flush_cur()
            if code:
                code.append("")
            continue
        if line.startswith("    ") or line.startswith("\t"):
            flush_cur()
            code.append(line)
        else:
            flush_code()
            cur.append(line.strip())
    flush_cur()
    flush_code()
    return paras


# ---------------------------------------------------------------- reStructuredText
_RST_ROLE = re.compile(r":[a-zA-Z:_-]+:`~?!?([^`<]*?)(?:\s*<[^`>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`_{1,2}")


def rst_clean(text):
    out = []
    skip_indented = False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        s = line.strip()
        if re.match(r"^\.\. ", s) or s == "..":
            # directives, comments, targets: drop the line and its indented options
            keep_body = re.match(r"^\.\. (code-block|code|literalinclude|note|warning|seealso|"
                                 r"versionadded|versionchanged|deprecated|important|tip|attention)\b", s)
            skip_indented = not keep_body
            continue
        if skip_indented:
            if not s:
                continue
            if line.startswith(" ") or line.startswith("\t"):
                if re.match(r"^\s+:[a-zA-Z-]+:", line):
                    continue
                if skip_indented:
                    continue
            skip_indented = False
        if re.fullmatch(r"([=\-~^\"'`#*+<>_.:])\1{2,}", s):
            continue  # section under/overlines
        if re.match(r"^\s*:[a-zA-Z -]+:\s", line) and not out:
            continue  # field lists at the top (metadata)
        line = _RST_LINK.sub(r"\1", line)
        line = _RST_ROLE.sub(r"\1", line)
        line = line.replace("``", "").replace("**", "")
        line = re.sub(r"(?<!\w)\*(\S[^*]*?)\*(?!\w)", r"\1", line)
        line = re.sub(r"\|([^|\s][^|]*)\|_?", r"\1", line)
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1]
        out.append(line)
    return _paras_from_lines(out)


def rst_docs(source, base):
    for path in sorted(glob.glob(os.path.join(base, "**", "*.rst.txt"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as fh:
            paras = rst_clean(fh.read())
        if sum(len(p) for p in paras) >= 200:
            yield source, os.path.relpath(path, base), paras


# ---------------------------------------------------------------- HTML
_BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "dt", "dd", "table",
          "ul", "ol", "dl", "blockquote", "section", "article", "header", "footer", "hr", "caption",
          "figcaption", "title"}
_SKIP = {"script", "style", "nav", "head", "noscript", "svg", "button", "form", "select"}


class _Text(html.parser.HTMLParser):
    def __init__(self, skip_classes=()):
        super().__init__(convert_charrefs=True)
        self.paras, self.cur, self.skip, self.pre = [], [], 0, 0
        self.stack = []
        self.skip_classes = set(skip_classes)

    def _flush(self):
        if self.cur:
            t = "".join(self.cur)
            if self.pre:
                t = t.strip("\n")
            else:
                t = re.sub(r"\s+", " ", t).strip()
            if t:
                self.paras.append(t)
            self.cur = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = set((a.get("class") or "").split())
        skipping = tag in _SKIP or bool(cls & self.skip_classes) or a.get("role") == "navigation"
        if tag in ("br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"):
            if tag in ("br", "hr"):
                if self.pre:
                    self.cur.append("\n")
                else:
                    self._flush()
            return
        self.stack.append((tag, skipping))
        if skipping:
            self.skip += 1
        if tag == "pre":
            self._flush()
            self.pre += 1
        elif tag in _BLOCK and not self.pre:
            self._flush()

    def handle_endtag(self, tag):
        # pop to the matching tag (HTML in the wild is not always well nested)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for t, sk in self.stack[i:]:
                    if sk:
                        self.skip -= 1
                    if t == "pre":
                        self._flush()
                        self.pre -= 1
                del self.stack[i:]
                break
        if tag in _BLOCK and not self.pre:
            self._flush()

    def handle_data(self, data):
        if not self.skip:
            self.cur.append(data)

    def close(self):
        super().close()
        self._flush()


def html_paras(text, skip_classes=()):
    p = _Text(skip_classes)
    try:
        p.feed(text)
        p.close()
    except Exception:
        return []
    # drop navigation crumbs: very short paragraphs that are only links/arrows
    return [x for x in p.paras if not re.fullmatch(r"[\W\d_]*(Prev|Next|Up|Home|Previous)?[\W\d_]*", x)]


def html_docs(source, base, pattern="**/*.html", exclude=None, skip_classes=(), min_chars=300):
    for path in sorted(glob.glob(os.path.join(base, pattern), recursive=True)):
        rel = os.path.relpath(path, base)
        if exclude and re.search(exclude, rel):
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            paras = html_paras(fh.read(), skip_classes)
        if sum(len(p) for p in paras) >= min_chars:
            yield source, rel, paras


RUST_BOOKS = ("book", "reference", "nomicon", "rust-by-example", "edition-guide", "embedded-book",
              "rustc", "rustdoc", "cargo", "unstable-book")


def rust_docs(base):
    for b in RUST_BOOKS:
        d = os.path.join(base, b)
        if not os.path.isdir(d):
            continue
        yield from html_docs("rustdoc", base, pattern=b + "/**/*.html", exclude=r"(print\.html|404\.html|toc\.html)$",
                             skip_classes=("sidebar", "nav-chapters", "menu-bar", "mobile-nav-chapters"))


# ---------------------------------------------------------------- AsciiDoc (git)
def asciidoc_docs(source, base):
    for path in sorted(glob.glob(os.path.join(base, "**", "*.txt"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = []
            for line in fh:
                s = line.rstrip("\n")
                if re.fullmatch(r"([=\-~^+.*_/])\1{3,}", s.strip()):
                    continue
                if re.match(r"^(include|ifdef|ifndef|endif|:[a-z-]+:)", s):
                    continue
                s = re.sub(r"linkgit:([\w-]+)\[(\d)\]", r"\1(\2)", s)
                s = s.replace("`", "").replace("'", "'")
                lines.append(s)
        paras = _paras_from_lines(lines)
        if sum(len(p) for p in paras) >= 200:
            yield source, os.path.relpath(path, base), paras


# ---------------------------------------------------------------- pod, man
def pod_docs(podroot):
    for path in sorted(glob.glob(os.path.join(podroot, "**", "*.pod"), recursive=True)):
        try:
            txt = subprocess.run(["pod2text", "-w", "10000", path], capture_output=True, timeout=120,
                                 check=False).stdout.decode("utf-8", errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            continue
        paras = _paras_from_lines(txt.split("\n"))
        # pod2text indents all prose by 4 spaces: undo that first
        lines = [l[4:] if l.startswith("    ") else l for l in txt.split("\n")]
        paras = _paras_from_lines(lines)
        if sum(len(p) for p in paras) >= 200:
            yield "perldoc", os.path.relpath(path, podroot), paras


def _render_man(path):
    env = dict(os.environ, MANWIDTH="10000", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8")
    try:
        r = subprocess.run(["man", "--nh", "--nj", "-E", "UTF-8", "-l", path], capture_output=True,
                           timeout=60, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return path, ""
    return path, r.stdout.decode("utf-8", errors="replace")


def man_docs(manroot):
    import multiprocessing
    paths = [p for p in sorted(glob.glob(os.path.join(manroot, "man[1-8]", "*"))) if not os.path.islink(p)]
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        rendered = pool.map(_render_man, paths, chunksize=8)  # order kept: map returns in input order
    for path, txt in rendered:
        txt = re.sub(r".\x08", "", txt)
        if len(txt) < 200 or txt.startswith(".so ") or "\n" not in txt:
            continue
        lines = txt.split("\n")[1:-2]  # header and footer lines
        # man indents body text by 7 spaces: undo that, keep deeper indentation as code
        lines = [l[7:] if l.startswith("       ") else l for l in lines]
        paras = _paras_from_lines(lines)
        if sum(len(p) for p in paras) >= 200:
            yield "manpages", os.path.relpath(path, manroot), paras


# ---------------------------------------------------------------- dictd
def _b64(s):
    alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    v = 0
    for ch in s:
        v = v * 64 + alpha.index(ch)
    return v


def dictd_entries(base):
    """(offset, entry text) of every distinct entry of the dictd files BASE.index / BASE.dict.dz."""
    with gzip.open(base + ".dict.dz", "rb") as fh:
        blob = fh.read()
    seen = set()
    with open(base + ".index", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-") or parts[0].startswith("00database"):
                continue
            off, ln = _b64(parts[1]), _b64(parts[2])
            if (off, ln) in seen:
                continue
            seen.add((off, ln))
            yield off, blob[off:off + ln].decode("utf-8", errors="replace")


def dictd_docs(source, base, min_chars=40):
    for off, entry in dictd_entries(base):
        entry = entry.replace("\r", "").replace("{", "").replace("}", "")
        # dictionary entries are prose wrapped with ragged indentation: join the lines of each
        # blank-line separated block (no code blocks here)
        paras = [re.sub(r"\s+", " ", b).strip() for b in re.split(r"\n\s*\n", entry)]
        paras = [p for p in paras if p]
        if sum(len(p) for p in paras) >= min_chars:
            yield source, "%d" % off, paras


# ---------------------------------------------------------------- all of them
def all_docs(root, manroot=None):
    """Every extra source under ROOT (a folder holding the unpacked .deb files), in a fixed order."""
    d = os.path.join(root, "usr", "share", "doc")
    gens = [
        rst_docs("pydoc", os.path.join(d, "python3.11", "html", "_sources")),
        rst_docs("linuxdoc", os.path.join(d, "linux-doc-6.1", "html", "_sources")),
        html_docs("pgdoc", os.path.join(d, "postgresql-doc-15", "html"),
                  skip_classes=("navheader", "navfooter")),
        html_docs("sqlitedoc", os.path.join(d, "sqlite3"), pattern="*.html",
                  skip_classes=("nosearch", "menu", "submenu")),
        html_docs("handbook", os.path.join(d, "debian-handbook", "html", "en-US"),
                  skip_classes=("navheader", "navfooter", "docnav", "toc")),
        html_docs("debref", os.path.join(d, "debian-reference-en"), skip_classes=("navheader", "navfooter", "toc")),
        rust_docs(os.path.join(d, "rust-doc", "html")),
        asciidoc_docs("gitdoc", os.path.join(d, "git-doc")),
        html_docs("bashdoc", os.path.join(d, "bash"), pattern="bashref.html", skip_classes=("header", "nav-panel")),
    ]
    pods = glob.glob(os.path.join(root, "usr", "share", "perl", "*", "pod"))
    if pods:
        gens.append(pod_docs(pods[0]))
    gens.append(man_docs(os.path.join(manroot or root, "usr", "share", "man")))
    dd = os.path.join(root, "usr", "share", "dictd")
    for name in ("wn", "foldoc", "jargon", "devil"):
        src = {"wn": "wordnet"}.get(name, name)
        if os.path.exists(os.path.join(dd, name + ".index")):
            gens.append(dictd_docs(src, os.path.join(dd, name)))
    for g in gens:
        yield from g
