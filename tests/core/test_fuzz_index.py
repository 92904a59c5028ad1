"""Property tests for the project index's input surfaces (issue: every input surface fuzzed):
file names, file contents, links and special files, files that change under the indexer, and
search queries. The contract is tests/support/fuzz.py's: an odd input costs itself (a skip, at
most a user message), never the project; no hang; nothing written outside the index folder;
a file indexed before is still found. Everything is real: files, SQLite, the ONNX embedder.
The plain tests at the end are the shrunk examples of what the fuzzing found."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from app.core.errors import UserError
from app.core.index.chunk import MAX_NESTING, chunk_file
from app.core.index.embed import Embedder
from app.core.index.grammars import GRAMMARS
from app.core.index.indexer import ProjectIndex
from app.core.index.syntax import source_lines
from app.core.index.walk import (MAX_FILE_BYTES, ODD_NAME, ROOT_SKIP_DIRS, SKIP_DIRS, language_of, odd_name,
                                 walk_project)
from tests.support.fuzz import examples, holds, surface

GOOD = "src/good.py"
GOOD_TEXT = "def fetch_quota_limit(account):\n    return account.quota * 42\n"
GOOD_QUERY = "fetch quota limit"
SECRET = "def secret_outside_helper():\n    return 'outside the project'\n"
HANG_S = 60


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-index")


# ---- helpers ------------------------------------------------------------------------------------

@contextmanager
def workspace(base: Path):
    """A fresh folder per example: proj/ (with the good file), outside/ (a link target) and
    index/ (created up front so only its contents change)."""
    d = Path(tempfile.mkdtemp(dir=base))
    (d / "proj" / "src").mkdir(parents=True)
    (d / "proj" / GOOD).write_text(GOOD_TEXT)
    (d / "outside").mkdir()
    (d / "outside" / "secret.py").write_text(SECRET)
    (d / "index").mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def snapshot(top: Path, skip: Path) -> dict[bytes, tuple[int, int, int]]:
    """Every entry under ``top`` but ``skip`` (mode, size, mtime), links not followed."""
    out, skip_b = {}, os.fsencode(skip)
    for dp, dns, fns in os.walk(os.fsencode(top)):
        dns[:] = [n for n in dns if os.path.join(dp, n) != skip_b]
        for n in dns + fns:
            st_ = os.lstat(os.path.join(dp, n))
            out[os.path.join(dp, n)] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return out


def bounded(fn, seconds: float = HANG_S, fifos=()):
    """``fn()`` in a thread, failing the example if it runs past ``seconds`` (a FIFO opened for
    reading waits for a writer forever: open each for writing to let the thread go)."""
    box: dict = {}

    def run():
        try:
            box["r"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller as is
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        for f in fifos:
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        t.join(5)
        raise AssertionError(f"hung for over {seconds} s")
    if "e" in box:
        raise box["e"]
    return box["r"]


def update(pi: ProjectIndex, name: str, fifos=(), **kw):
    out = holds(lambda: bounded(lambda: pi.update(**kw), fifos=fifos), name, mentions=())
    if isinstance(out, UserError):
        assert str(pi.store.directory) in str(out) or "index" in str(out), str(out)
    return out


def check_index(pi: ProjectIndex, root: Path, settled: bool = True) -> None:
    """The good file is still found, every citation is one line of text, nothing from outside
    the project is in, and (``settled``) the index holds what the walker sees, byte for byte."""
    hits = pi.search(GOOD_QUERY, 5)
    assert any(h.chunk.path == GOOD for h in hits), [h.citation for h in hits]
    files = pi.store.files()
    walked = {f.path for f in walk_project(root).files}
    assert GOOD in files
    for path in files:
        assert not odd_name(path) and len(path.splitlines()) == 1
    for h in pi.search("secret outside helper", 10, mode="bm25"):
        assert "secret_outside_helper" not in h.chunk.text, h.citation
    if settled:
        assert set(files) == walked
        for path, row in files.items():
            assert row.sha256 == hashlib.sha256((root / path).read_bytes()).hexdigest(), path


def check_chunks(chunks, text: str, path: str, language: str) -> None:
    """Chunks cite exactly the file's lines, in order, and cover every line with content."""
    lines = source_lines(text)
    covered = set()
    last = 0
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), c.citation
        assert c.text == "\n".join(lines[c.start_line - 1:c.end_line]), c.citation
        assert c.path == path and c.language == language
        assert c.start_line >= last, "chunks out of line order"
        last = c.start_line
        covered.update(range(c.start_line - 1, c.end_line))
    missing = [i + 1 for i, ln in enumerate(lines) if any(ch.isalnum() for ch in ln) and i not in covered]
    assert not missing, f"lines {missing[:10]} are in no chunk"


def make(path_b: bytes, data: bytes = b"probe_value = 1\n") -> bool:
    """Create a file at a bytes path as the OS allows; False when the name is taken."""
    try:
        fd = os.open(path_b, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except (FileExistsError, IsADirectoryError):
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


# ---- file names ------------------------------------------------------------------------------------

SPECIAL_NAMES = [b"a.py", b"A.py", b"a.PY", b"\xff.py", b"caf\xe9.py", b"new\nline.py", b"cr\r.py", b"\x1b[31m.py",
                 b"\xc3\xa9.py", b"e\xcc\x81.py", b"x" * 252 + b".py", b"\xe2\x80\xa8sep.py", b"\xc2\x85nel.py",
                 b" .py", b".py", b"-rf.py", b"*.py", b"[a].py", b"#x.py", b"!x.py", b"\\.py", b"..py", b"a b.md",
                 b"\xed\xa0\x80.py", b"\xef\xbb\xbfbom.py", b"\xf0\x9f\x90\x8d.py", b"CON.py", b"nul.js",
                 "日本語.rs".encode(), b"package-lock.json", b"x.min.js", b"Makefile", b"\x7f.sh"]
EXTS = ["", ".py", ".js", ".md", ".txt", ".rs", ".PY", ".json"]


def _fit(name: bytes) -> bytes:
    return name[-255:] if len(name) > 255 else name


_text_names = st.builds(lambda t, ext: _fit(t.encode("utf-8") + ext.encode()),
                        st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=90),
                        st.sampled_from(EXTS))
_byte_names = st.builds(lambda b, ext: _fit(b + ext.encode()),
                        st.binary(min_size=1, max_size=255), st.sampled_from(EXTS))
NAMES = st.one_of(st.sampled_from(SPECIAL_NAMES), _text_names, _byte_names).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..", b".gitignore") and 0 < len(b) <= 255)
# (folder: "" root, "src", or the name itself as a folder holding inner.py; the name)
ENTRIES = st.lists(st.tuples(st.sampled_from(["", "src", "dir"]), NAMES), min_size=1, max_size=6)


def build_names(root: Path, entries, case_twins: bool) -> list[tuple[bytes, bool]]:
    """Create the entries; returns (relative bytes path, expected to be indexed) per file made."""
    made = []
    todo = list(entries)
    if case_twins:
        for where, name in entries:
            try:
                twin = name.decode("utf-8").swapcase().encode("utf-8")
            except UnicodeDecodeError:
                continue
            if twin != name and len(twin) <= 255:
                todo.append((where, twin))
    rb = os.fsencode(root)
    for where, name in todo:
        if where == "dir":
            d = os.path.join(rb, name)
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            rel, parent = name + b"/inner.py", name
        else:
            rel, parent = (b"src/" + name if where else name), None
        if not make(os.path.join(rb, rel)):
            continue
        s = os.fsdecode(rel)
        parent_ok = parent is None or not (odd_name(os.fsdecode(parent)) or os.fsdecode(parent) in SKIP_DIRS
                                           or os.fsdecode(parent) in ROOT_SKIP_DIRS
                                           or os.fsdecode(parent).endswith(".egg-info"))
        made.append((rel, parent_ok and not odd_name(s.rsplit("/", 1)[-1]) and language_of(s) is not None))
    return made


def check_walk(root: Path, made) -> None:
    walked = bounded(lambda: walk_project(root))
    paths = {f.path for f in walked.files}
    assert GOOD in paths
    for f in walked.files:
        assert not odd_name(f.path) and len(f.path.splitlines()) == 1, repr(f.path)
        p = root / f.path
        assert p.is_file() and not p.is_symlink() and f.language == language_of(f.path)
    for rel, expected in made:
        s = os.fsdecode(rel)
        if expected:
            assert s in paths, f"{s!r} was not walked"
        elif odd_name(s.rsplit("/", 1)[-1]):
            assert s not in paths and walked.skipped[ODD_NAME] >= 1


@given(entries=ENTRIES, case_twins=st.booleans())
@examples(ci=150)
def test_any_file_names_walk(base, entries, case_twins):
    """Names are whatever bytes the OS allows: the walker keeps those it can store and cite,
    and counts the rest."""
    with surface("index: file names (walker)"), workspace(base) as d:
        made = build_names(d / "proj", entries, case_twins)
        holds(lambda: check_walk(d / "proj", made), "index: file names (walker)")


@given(entries=ENTRIES, case_twins=st.booleans())
@examples(ci=20)
def test_any_file_names_index_and_search(base, embedder, entries, case_twins):
    """The same names through the whole index: the good file indexed before stays found."""
    with surface("index: file names (index)"), workspace(base) as d:
        root = d / "proj"
        pi = ProjectIndex(root, d / "index", embedder)
        try:
            update(pi, "index: file names (index)")
            build_names(root, entries, case_twins)
            before = snapshot(d, d / "index")
            update(pi, "index: file names (index)")
            assert snapshot(d, d / "index") == before, "something was written outside the index folder"
            check_index(pi, root)
        finally:
            pi.close()


# ---- contents -------------------------------------------------------------------------------------

FRAGMENTS = ["def f(x):", "    return x", "class A:", "    def m(self):", "        pass", "function g(a) {", "}",
             "{", "(", ")", "[", "]", "const h = () => {", "/* c */", "# comment", "// comment", '"""doc', "'str",
             "\t", "    ", "é", "\ufeff", "\u2028", "\x00", "\x0c", "\x85", "fn main() {", "impl X {",
             "namespace n {", "public class J {", "module M", "end", "#include <x>", "<?php", "```", "# Heading",
             "## H2", "@decorator", "export default class {", "x" * 300, "\ud7ff", "\U0010ffff", "\\"]
EOLS = ["\n", "\r\n", "\r", "\n\r", "\u2028"]
ENCODINGS = ["utf-8", "utf-8", "latin-1", "cp1252", "utf-16-le", "utf-8-sig"]
BOMS = [b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf"]


@st.composite
def contents(draw) -> bytes:
    """Bytes of a source file: binary, or code fragments each in its own encoding (so mixed),
    with any line ends, an optional BOM and stray NULs."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=3000))
    parts = draw(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=40))
    eol = draw(st.sampled_from(EOLS))
    mixed = draw(st.booleans())
    enc = draw(st.sampled_from(ENCODINGS))
    out = bytearray(draw(st.sampled_from(BOMS)))
    for p in parts:
        e = draw(st.sampled_from(ENCODINGS)) if mixed else enc
        out += (p + eol).encode(e, "replace")
    if draw(st.booleans()) and out:
        at = draw(st.integers(0, len(out)))
        out[at:at] = b"\0" * draw(st.integers(1, 3))
    return bytes(out)


CHUNK_LANGUAGES = sorted(GRAMMARS) + ["markdown", "text", "json"]


@given(raw=contents(), language=st.sampled_from(CHUNK_LANGUAGES))
@examples(ci=200)
def test_any_contents_chunk(raw, language):
    """Whatever a file holds, its chunks cite its exact lines and lose none with content."""
    with surface("index: file contents (chunker)"):
        text = raw.decode("utf-8-sig", "replace")
        path = "src/x.any"
        chunks = holds(lambda: chunk_file(path, text, language), "index: file contents (chunker)")
        check_chunks(chunks, text, path, language)


@given(files=st.lists(st.tuples(st.sampled_from([".py", ".js", ".md", ".c", ".txt", ".rs", ".json"]), contents()),
                      min_size=1, max_size=4))
@examples(ci=25)
def test_any_contents_index(base, embedder, files):
    """Binary, mixed encodings, BOMs, NULs, any line ends: each file costs at most itself."""
    with surface("index: file contents (index)"), workspace(base) as d:
        root = d / "proj"
        pi = ProjectIndex(root, d / "index", embedder)
        try:
            update(pi, "index: file contents (index)")
            for i, (ext, raw) in enumerate(files):
                (root / f"f{i}{ext}").write_bytes(raw)
            before = snapshot(d, d / "index")
            stats = update(pi, "index: file contents (index)")
            assert snapshot(d, d / "index") == before, "something was written outside the index folder"
            check_index(pi, root)
            if not isinstance(stats, UserError):
                assert stats.embedded == stats.chunks
        finally:
            pi.close()


# ---- deep nesting ------------------------------------------------------------------------------

def nested(language: str, shape: int, n: int, eol: str = "") -> str:
    """Code ``n`` levels deep in ``language`` (definitions, brackets or calls, by ``shape``),
    a level a line when ``eol`` is a line end."""
    def ladder(opener, closer, mid=""):
        return (opener + eol) * n + mid + (closer + eol) * n

    def indented(line):  # Python/Ruby blocks need a line per level, one more space each
        n2 = min(n, 1300)  # indentation grows quadratically; stay under the 1 MB limit
        return "".join(" " * i + line.format(i=i) + "\n" for i in range(n2)) + " " * n2 + "pass\n"

    shapes = {
        "python": [lambda: "x = " + ladder("(", ")", "1") + "\n", lambda: "x = " + ladder("[", "]") + "\n",
                   lambda: indented("def f{i}():"), lambda: indented("class C{i}:"),
                   lambda: "x = " + ladder("{'a': ", "}", "1") + "\n", lambda: "f" + ladder("(", ")") + "\n"],
        "javascript": [lambda: ladder("function f(){", "}"), lambda: "x = " + ladder("[", "]"),
                       lambda: ladder("class A{m(){", "}}"), lambda: "x=" + ladder("({a:", "})", "1"),
                       lambda: ladder("const f=()=>{", "};")],
        "typescript": [lambda: ladder("namespace N{", "}"), lambda: ladder("class A{m(){", "}}")],
        "tsx": [lambda: ladder("namespace N{", "}"), lambda: "x=" + ladder("<a>", "</a>")],
        "cpp": [lambda: ladder("namespace a{", "}"), lambda: ladder("struct S{", "};")],
        "c": [lambda: ladder("struct S{", "};"), lambda: "int x = " + ladder("(", ")", "1") + ";"],
        "rust": [lambda: ladder("mod m{", "}"), lambda: ladder("fn f(){", "}")],
        "csharp": [lambda: ladder("namespace N{", "}"), lambda: ladder("class C{", "}")],
        "java": [lambda: ladder("class C{", "}"), lambda: "class A{int x=" + ladder("(", ")", "1") + ";}"],
        "kotlin": [lambda: ladder("class C{", "}")],
        "scala": [lambda: ladder("object O{", "}")],
        "swift": [lambda: ladder("class C{", "}")],
        "go": [lambda: "package p\nfunc f(){" + ladder("func(){", "}()") + "}"],
        "ruby": [lambda: ladder("module M\n", "end\n"), lambda: ladder("class C\n", "end\n")],
        "php": [lambda: "<?php " + ladder("function f(){", "}")],
        "bash": [lambda: ladder("f(){ ", " }")],
    }
    options = shapes[language]
    return options[shape % len(options)]()


@given(language=st.sampled_from(sorted(GRAMMARS)), shape=st.integers(0, 5), n=st.integers(1, 5000),
       eol=st.sampled_from(["", "\n", "\r\n"]))
@examples(ci=40)
def test_deeply_nested_code_chunks(language, shape, n, eol):
    """Thousands of nested brackets or definitions must not take the recursion limit (or the
    file) down."""
    with surface("index: nested code (chunker)"):
        text = nested(language, shape, n, eol)
        chunks = holds(lambda: bounded(lambda: chunk_file("deep.x", text, language)), "index: nested code (chunker)")
        check_chunks(chunks, text, "deep.x", language)


# ---- links and special files ------------------------------------------------------------------

SPECIALS = ["loop", "mutual_loop", "dangling", "outside_file", "outside_dir", "dev_zero", "dev_urandom", "fifo",
            "dir_loop", "char_device", "dir_fifo_ignore"]
SPECIAL_AT = ["x.py", ".gitignore", "sub", "README.md", "pyvenv.cfg"]
# (kind, name, in src/); a pyvenv.cfg in src/ would rightly make src/ a virtualenv, skipped
SPECIAL_LISTS = st.lists(st.tuples(st.sampled_from(SPECIALS), st.sampled_from(SPECIAL_AT), st.booleans()).filter(
    lambda t: not (t[1] == "pyvenv.cfg" and t[2])), min_size=1, max_size=4)


def make_special(root: Path, outside: Path, kind: str, rel: str) -> list[Path]:
    """Create ``kind`` at ``root/rel``; returns the FIFOs made (to release a hung reader)."""
    p = root / rel
    if p.exists() or p.is_symlink():
        return []
    if kind == "loop":
        os.symlink(p.name, p)
    elif kind == "mutual_loop":
        os.symlink(p.name + ".other", p)
        if not p.with_name(p.name + ".other").is_symlink():
            os.symlink(p.name, p.with_name(p.name + ".other"))
    elif kind == "dangling":
        os.symlink("/nonexistent/nowhere.py", p)
    elif kind == "outside_file":
        os.symlink(outside / "secret.py", p)
    elif kind == "outside_dir":
        os.symlink(outside, p)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", p)
    elif kind == "dev_urandom":
        os.symlink("/dev/urandom", p)
    elif kind == "dir_loop":
        os.symlink(".", p)
    elif kind == "char_device":
        try:
            os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # what /dev/zero is
        except (PermissionError, OSError):
            os.symlink("/dev/zero", p)
    elif kind == "dir_fifo_ignore":  # a folder whose .gitignore is a FIFO
        p.mkdir()
        os.mkfifo(p / ".gitignore")
        (p / "inside.py").write_text("def inside_folder():\n    return 3\n")
        return [p / ".gitignore"]
    elif kind == "fifo":
        os.mkfifo(p)
        return [p]
    return []


@given(specials=SPECIAL_LISTS)
@examples(ci=40)
def test_links_and_special_files_walk(base, specials):
    """Loops, dangling links, links out of the project or to devices, FIFOs: skipped, never
    followed, never waited on."""
    with surface("index: links and special files (walker)"), workspace(base) as d:
        root, fifos = d / "proj", []
        for kind, name, in_src in specials:
            fifos += make_special(root, d / "outside", kind, f"src/{name}" if in_src else name)
        walked = holds(lambda: bounded(lambda: walk_project(root, any_text=True), fifos=fifos),
                       "index: links and special files (walker)")
        paths = {f.path for f in walked.files}
        assert GOOD in paths
        for f in walked.files:
            assert (root / f.path).is_file() and not (root / f.path).is_symlink(), f.path


@given(specials=SPECIAL_LISTS)
@examples(ci=20)
def test_links_and_special_files_index(base, embedder, specials):
    """The same through the index: nothing from outside the project is read into it."""
    with surface("index: links and special files (index)"), workspace(base) as d:
        root = d / "proj"
        pi = ProjectIndex(root, d / "index", embedder)
        try:
            update(pi, "index: links and special files (index)")
            fifos = []
            for kind, name, in_src in specials:
                fifos += make_special(root, d / "outside", kind, f"src/{name}" if in_src else name)
            before = snapshot(d, d / "index")
            update(pi, "index: links and special files (index)", fifos=fifos)
            assert snapshot(d, d / "index") == before, "something was written outside the index folder"
            check_index(pi, root)
        finally:
            pi.close()


# ---- files changing while read -------------------------------------------------------------------

MUTATIONS = ["delete", "truncate", "grow_over_limit", "fifo", "link_zero", "link_outside", "dir", "binary",
             "latin1", "rewrite", "chmod_none", "none"]


def mutate(p: Path, how: str, outside: Path) -> list[Path]:
    """Change ``p`` the way an editor, a build or a checkout might while the indexer runs."""
    if how == "none":
        return []
    if how == "truncate":
        os.truncate(p, 0)
        return []
    if how == "rewrite":
        p.write_text("def rewritten_now():\n    return 'after the walk'\n")
        return []
    if how == "grow_over_limit":
        p.write_bytes(b"x = 1\n" * (MAX_FILE_BYTES // 6 + 100))
        return []
    if how == "binary":
        p.write_bytes(b"\0\1\2" * 100)
        return []
    if how == "latin1":
        p.write_bytes("caf\xe9 = 'latin-1'\n".encode("latin-1"))
        return []
    if how == "chmod_none":
        os.chmod(p, 0)
        return []
    p.unlink()
    if how == "fifo":
        os.mkfifo(p)
        return [p]
    if how == "link_zero":
        os.symlink("/dev/zero", p)
    elif how == "link_outside":
        os.symlink(outside / "secret.py", p)
    elif how == "dir":
        p.mkdir()
    return []


@given(hows=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=5))
@examples(ci=25)
def test_files_changing_between_walk_and_read(base, embedder, hows):
    """Each file changes after the walk listed it and before it is read (the progress callback
    runs right before the reads): the run finishes, and the next one agrees with the disk."""
    with surface("index: files changing while read"), workspace(base) as d:
        root = d / "proj"
        paths = [root / f"m{i}.py" for i in range(len(hows))]
        for i, p in enumerate(paths):
            p.write_text(f"def first_version_{i}():\n    return {i}\n")
        pi = ProjectIndex(root, d / "index", embedder)
        try:
            update(pi, "index: files changing while read")
            for i, p in enumerate(paths):  # changed, so the next run reads them
                p.write_text(f"def second_version_{i}(a, b):\n    return a + b + {i}\n")
            fifos: list[Path] = []
            done = []

            def progress(_p):
                if not done:
                    done.append(1)
                    for p, how in zip(paths, hows):
                        fifos.extend(mutate(p, how, d / "outside"))

            update(pi, "index: files changing while read", fifos=fifos, progress=progress)
            assert done
            for p in paths:
                if p.is_dir():
                    os.rmdir(p)
                elif p.is_symlink() or (p.exists() and stat.S_ISFIFO(p.lstat().st_mode)):
                    p.unlink()
            update(pi, "index: files changing while read")  # settled
            check_index(pi, root)
        finally:
            pi.close()


def test_files_churning_in_a_thread_during_updates(base, embedder):
    """A thread rewrites, truncates, deletes and swaps files for FIFOs while the index updates."""
    with surface("index: files changing while read"), workspace(base) as d:
        root = d / "proj"
        paths = [root / f"churn{i}.py" for i in range(6)]
        for p in paths:
            p.write_text("def churn():\n    return 0\n")
        stop = threading.Event()

        def churn():
            k = 0
            while not stop.is_set():
                p = paths[k % len(paths)]
                how = ["rewrite", "truncate", "delete", "fifo", "link_zero", "grow_over_limit"][k % 6]
                try:
                    if p.exists() or p.is_symlink():
                        if p.is_symlink() or stat.S_ISFIFO(p.lstat().st_mode):
                            p.unlink()
                            p.write_text(f"def churn_{k}():\n    return {k}\n")
                        else:
                            mutate(p, how, d / "outside")
                    else:
                        p.write_text(f"def churn_{k}():\n    return {k}\n")
                except OSError:
                    pass
                k += 1
                time.sleep(0.002)

        pi = ProjectIndex(root, d / "index", embedder)
        t = threading.Thread(target=churn, daemon=True)
        t.start()
        try:
            for _ in range(4):
                update(pi, "index: files changing while read", fifos=[p for p in paths])
        finally:
            stop.set()
            t.join(10)
        try:
            for p in paths:
                if p.is_symlink() or (p.exists() and stat.S_ISFIFO(p.lstat().st_mode)):
                    p.unlink()
            update(pi, "index: files changing while read")
            check_index(pi, root)
        finally:
            pi.close()


# ---- search queries --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    d = tmp_path_factory.mktemp("fuzz-search")
    (d / "proj" / "src").mkdir(parents=True)
    (d / "proj" / GOOD).write_text(GOOD_TEXT)
    (d / "proj" / "src" / "other.js").write_text("function renderInvoiceTotal(items) {\n  return items.length;\n}\n")
    pi = ProjectIndex(d / "proj", d / "index", embedder)
    pi.update()
    yield pi
    pi.close()


FTS_SYNTAX = ['"', '""', "*", "NEAR(a b)", "a AND", "OR", "NOT x", "^x", "path:good", "(", ")", "-", "+", "'",
              "\0", "\ud800", "\udcff", "fetch_quota_limit", "renderInvoiceTotal", "😀", "\u2028", "x" * 5000]
QUERIES = st.one_of(st.text(max_size=200),
                    st.lists(st.sampled_from(FTS_SYNTAX), max_size=8).map(" ".join),
                    st.text(st.characters(categories=["Cs", "Ll", "Zs", "Po", "Cc"]), max_size=50))


@given(query=QUERIES, mode=st.sampled_from(["hybrid", "dense", "bm25"]))
@examples(ci=60)
def test_any_search_query(built, query, mode):
    """A query is whatever was typed or passed on the command line (bytes that are not UTF-8
    arrive as lone surrogates): hits or a message, and the index still answers afterwards."""
    with surface("index: search queries"):
        hits = holds(lambda: built.search(query, 5, mode=mode), "index: search queries")
        if not isinstance(hits, UserError):
            assert all(h.chunk.path in ("src/good.py", "src/other.js") for h in hits)
        assert any(h.chunk.path == GOOD for h in built.search(GOOD_QUERY, 5))


# ---- sizes at the limit ----------------------------------------------------------------------------

@pytest.mark.parametrize("eol", ["\n", "\r"])
def test_one_line_files_at_the_size_limit(tmp_path, embedder, eol):
    """A 10 MB line is skipped; a line just under 1 MB (also in a CR-only file) is one file of
    one line each: indexed, cited and found, in bounded time."""
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / GOOD).write_text(GOOD_TEXT)
    head = "huge_line_marker = [" + eol
    (root / "src" / "huge.py").write_text("x = '" + "a" * 10_000_000 + "'\n")
    (root / "src" / "edge.py").write_text(head + "1, " * ((MAX_FILE_BYTES - len(head) - 2) // 3) + "]" + eol)
    (root / "src" / "over.js").write_text("y" * (MAX_FILE_BYTES + 1))
    assert (root / "src" / "edge.py").stat().st_size <= MAX_FILE_BYTES
    walked = walk_project(root)
    assert [f.path for f in walked.files] == ["src/edge.py", GOOD] and walked.skipped["over 1 MB"] == 2
    pi = ProjectIndex(root, tmp_path / "index", embedder)
    try:
        bounded(pi.update, 120)
        check_index(pi, root)
        hits = pi.search("huge_line_marker", 3, mode="bm25")
        assert hits and hits[0].chunk.path == "src/edge.py"
    finally:
        pi.close()


# ---- regressions: the shrunk examples of what the fuzzing found -----------------------------------

def test_a_gitignore_that_is_a_fifo_or_a_link_to_dev_zero_is_not_read(tmp_path):
    """Found: the walker opened .gitignore as it came (a FIFO waited for a writer forever, a
    link to /dev/zero read until memory ran out). It is read only as a regular file, as git."""
    root = tmp_path / "proj"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "keep.py").write_text("x = 1\n")
    (root / "a" / "b" / "keep.py").write_text("y = 2\n")
    os.mkfifo(root / "a" / ".gitignore")
    os.symlink("/dev/zero", root / "a" / "b" / ".gitignore")
    os.symlink("/dev/urandom", root / ".gitignore")
    walked = bounded(lambda: walk_project(root), 10, fifos=[root / "a" / ".gitignore"])
    assert [f.path for f in walked.files] == ["a/b/keep.py", "a/keep.py"]


@pytest.mark.parametrize("how", ["fifo", "link_zero", "grow_over_limit", "link_outside"])
def test_a_file_swapped_after_the_walk_is_not_read_as_it_now_is(tmp_path, embedder, how):
    """Found: the indexer read a listed file with read_bytes(): swapped for a FIFO after the
    walk it hung the update, for a link to /dev/zero it filled memory, grown past 1 MB it was
    read whole. Now it reads a regular file only, not through a link, at most 1 MB."""
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / GOOD).write_text(GOOD_TEXT)
    victim = root / "src" / "victim.py"
    victim.write_text("def victim():\n    return 1\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.py").write_text(SECRET)
    pi = ProjectIndex(root, tmp_path / "index", embedder)
    fifos: list[Path] = []
    try:
        def progress(_p):
            if not fifos and victim.exists() and not victim.is_symlink():
                fifos.extend(mutate(victim, how, tmp_path / "outside") or [victim])

        stats = bounded(lambda: pi.update(progress=progress), 30, fifos=[victim])
        assert "src/victim.py" not in pi.store.files()
        assert stats.skipped["unreadable" if how != "grow_over_limit" else "over 1 MB"] == 1
        check_index(pi, root, settled=False)
    finally:
        pi.close()


@pytest.mark.parametrize("language, text", [
    ("python", "".join(" " * i + f"class C{i}:\n" for i in range(1300)) + " " * 1300 + "pass\n"),
    ("cpp", "namespace a{\n" * 5000 + "}\n" * 5000),
    ("java", "class C{\n" * 5000 + "}\n" * 5000),
    ("rust", "mod m{\n" * 5000 + "}\n" * 5000),
    ("csharp", "namespace N{\n" * 3000 + "}\n" * 3000),
    ("ruby", "module M\n" * 3000 + "end\n" * 3000),
])
def test_definitions_nested_thousands_deep_are_cut_by_windows(language, text):
    """Found: a definition too big for one chunk was split into its members recursively, a few
    stack frames per level, so deep nesting took the recursion limit (and with it the
    update of the whole project); 5,000 nested namespaces, classes or modules likewise (cpp,
    java, rust, csharp, ruby). Below MAX_NESTING levels it is cut by line windows."""
    chunks = chunk_file("deep.x", text, language)
    check_chunks(chunks, text, "deep.x", language)
    assert max(c.symbol.count(".") for c in chunks) <= MAX_NESTING + 1


def test_names_with_unicode_line_breaks_are_odd_names(tmp_path):
    """Found: a name with U+2028, U+2029 or the C1 control U+0085 was indexed, and its citation
    broke over two lines (str.splitlines and Qt break there). They count as control characters."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "good.py").write_text("x = 1\n")
    for name in ("\u2028sep.py", "para\u2029.py", "\x85nel.py", "c1\x9b.py"):
        (root / name).write_text("y = 2\n")
    walked = walk_project(root)
    assert [f.path for f in walked.files] == ["good.py"] and walked.skipped[ODD_NAME] == 4


def test_a_query_with_lone_surrogates_is_searched_as_the_rest_of_it(built):
    """Found: a query holding bytes that are not UTF-8 (a command-line argument: Python keeps
    them as lone surrogates) made the tokenizer raise TypeError. They are dropped as '?'."""
    for mode in ("hybrid", "dense", "bm25"):
        hits = built.search("fetch_quota_limit \udcff\ud800", 5, mode=mode)
        assert hits and hits[0].chunk.path == GOOD
    assert built.search("\ud800", 5) is not None


@pytest.mark.parametrize("language", ["scala", "java", "python", "javascript"])
def test_a_lone_carriage_return_after_the_last_newline_is_a_line(language):
    """Found: "public class J {\\n\\r" lost its last line in source_lines (the "\\r" was taken for
    a line end) while tree-sitter ends the class on that row: IndexError in the chunker, which
    took down the update of the whole project."""
    text = "public class J {\n\r"
    chunks = chunk_file("J.x", text, language)
    check_chunks(chunks, text, "J.x", language)
    assert source_lines(text) == ["public class J {", ""] and source_lines("a\n") == ["a"]
