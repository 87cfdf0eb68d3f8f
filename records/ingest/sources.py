"""The raw files: which file is each table's, its header and renames, the scan that reads it
as text, the md5 of its bytes (and whether a blank line sits inside), the blank-line rewrite.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from common.errors import first_line
from records.contract import TABLES, Table
from records.ingest.errors import ContractError
from records.ingest.sql import lit, qi

EXTENSIONS = (".csv", ".csv.gz", ".parquet")
_CHUNK = 1 << 23
_LF_BLANK = re.compile(b"\n\n")
_CRLF_BLANK = re.compile(b"\n\r\n")
# Parquet types a customer_id column must not have: 1.0 is not an id
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
# the CSV scan's NULL string: a control byte no export holds (see scan_sql)
_NEVER = "\x01\x02"


@dataclass
class Source:
    table: Table
    path: Path
    kind: str  # "csv" or "parquet"
    header: list[str]  # file column names as in the file
    names: list[str]  # file column names after renames, in file order
    mapping: dict[str, int]  # contract column -> position in the file
    extra: list[str]
    native_types: dict[str, str] = field(default_factory=dict)  # parquet: contract col -> type
    hasher: Hasher | None = None

    @property
    def file(self) -> str:
        return self.path.name



def find_file(raw_dir: Path, table: Table) -> Path | None:
    found = [raw_dir / f"{table.name}{ext}" for ext in EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ContractError(
            f"{raw_dir}: two files for table '{table.name}' ({names}); keep exactly one"
        )
    if not found:
        if table.optional:
            return None
        expected = " or ".join(f"{table.name}{ext}" for ext in EXTENSIONS)
        raise ContractError(
            f"{raw_dir}: required file {expected} is missing (table '{table.name}': "
            f"{table.meaning})"
        )
    return found[0]


def line_endings(path: Path) -> tuple[int, int]:
    """How many lines of a CSV (gzipped or not) end in \\r\\n and how many in a bare \\n."""
    opener = gzip.open if path.name.endswith(".gz") else open
    crlf = lf = 0
    last = b""
    try:
        with opener(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                crlf += block.count(b"\r\n") + (last == b"\r" and block[:1] == b"\n")
                lf += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError, zlib.error):
        return 0, 0
    return crlf, lf - crlf


def csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            first = f.readline(1 << 20)
    except (OSError, EOFError, zlib.error) as err:
        raise ContractError(f"{path.name}: cannot read the file: {err}") from None
    if not first:
        raise ContractError(f"{path.name}: the file is empty (expected a header line)")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ContractError(f"{path.name}: not UTF-8 (line 1, the header)") from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise ContractError(f"{path.name}: line 1 is empty (expected a header line)")
    if "\r" in text:
        raise ContractError(
            f"{path.name}: its lines end in a carriage return alone (\\r, an old Mac format), "
            "which CSV readers do not take as a line end: convert the file to \\n or \\r\\n "
            "line endings (e.g. `tr '\\r' '\\n'`) or export it again")
    try:
        return [name.strip() for name in next(csv.reader([text]))]
    except csv.Error as err:
        raise ContractError(f"{path.name}: line 1 (the header) is not CSV: {err}") from None


def parquet_header(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(path)})").fetchall()
    except duckdb.Error as err:
        raise ContractError(f"{path.name}: cannot read the Parquet file: {first_line(err)}") from None
    return [(r[0], r[1]) for r in rows]



def open_source(
    con: duckdb.DuckDBPyConnection, raw_dir: Path, table: Table, rename: dict[str, str]
) -> Source | None:
    path = find_file(raw_dir, table)
    if path is None:
        return None
    kind = "parquet" if path.name.endswith(".parquet") else "csv"
    if kind == "csv":
        header = csv_header(path)
        types: dict[str, str] = {}
    else:
        described = parquet_header(con, path)
        header = [n for n, _ in described]
        types = dict(described)
    names = [rename.get(n, n) for n in header]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen and n:
            raise ContractError(
                f"{path.name}: column '{n}' appears twice (positions {seen[n] + 1} and {i + 1})"
            )
        seen[n] = i
    for col in table.columns:
        if col.required and col.name not in seen:
            found = ", ".join(repr(n) for n in names)
            msg = f"{path.name}: required column '{col.name}' is missing; columns found: {found}"
            if len(names) == 1 and (";" in header[0] or "\t" in header[0]):
                msg += " (a single column containing ';' or a tab: the delimiter looks wrong, "
                msg += "the contract expects ',')"
            if rename:
                msg += f" (after renames {rename})"
            raise ContractError(msg)
    mapping = {c.name: seen[c.name] for c in table.columns if c.name in seen}
    extra = [n for n in names if n not in mapping]
    native = {c: types[header[i]] for c, i in mapping.items()} if types else {}
    for col in table.columns:
        sql_type = native.get(col.name, "")
        if col.kind == "id" and sql_type.upper().startswith(_FLOAT_TYPES):
            named = header[mapping[col.name]]
            shown = f"'{named}'" + (f" (renamed to '{col.name}')" if named != col.name else "")
            raise ContractError(
                f"{path.name}: column {shown} is typed {sql_type} (a floating-point number, "
                f"e.g. 1.0) in the Parquet file; ids are compared exactly, so export "
                f"{col.name} as integers (BIGINT) or strings (VARCHAR)"
            )
    return Source(table, path, kind, header, names, mapping, extra, native)



def open_all(con: duckdb.DuckDBPyConnection, raw_dir: Path,
             rename: dict[str, dict[str, str]]) -> dict[str, Source | None]:
    """Every contract table's source (None: an optional file that is absent)."""
    if not raw_dir.is_dir():
        raise ContractError(f"{raw_dir}: the raw folder does not exist")
    return {name: open_source(con, raw_dir, t, rename.get(name, {})) for name, t in TABLES.items()}


class Hasher(threading.Thread):
    """md5 of the raw bytes and, for CSV, whether a blank line sits inside the file.

    Runs beside DuckDB (hashlib and zlib release the GIL on large buffers), after the
    hasher `after`: `start_hashers` chains one per file from the start of the run.
    """

    def __init__(self, path: Path, check_blank: bool, after: Hasher | None = None):
        super().__init__(daemon=True)
        self.path, self.check_blank, self.after = path, check_blank, after
        self.md5: str | None = None
        self.interior_blank = False
        self.error: BaseException | None = None
        self.cancelled = threading.Event()

    def run(self) -> None:
        if self.after is not None:
            self.after.join()
        try:
            if not self.cancelled.is_set():
                self._run()
        except BaseException as err:  # reported by the caller
            self.error = err

    def cancel(self) -> None:
        """Stop soon (the run failed): no result is wanted any more."""
        self.cancelled.set()

    def _run(self) -> None:
        if self.path.name.endswith(".gz"):
            self._run_gz()
            return
        # one pass over the bytes in chunks: md5, and (CSV) the first blank line and the
        # end of the content; the chunk is searched while it is in the cache
        h = hashlib.md5()
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        pos, tail, first_blank, last_content = 0, b"", -1, 0
        pattern: re.Pattern[bytes] | None = None
        try:
            with open(self.path, "rb", buffering=0) as f:
                while (n := f.readinto(buf)) and not self.cancelled.is_set():
                    h.update(view[:n])
                    if self.check_blank:
                        if pattern is None:
                            nl = buf.find(b"\n", 0, n)
                            if nl >= 0:
                                before = buf[nl - 1] if nl > 0 else (tail[-1] if tail else 0)
                                crlf = pos + nl > 0 and before == 13
                                pattern = _CRLF_BLANK if crlf else _LF_BLANK
                        if pattern is not None and first_blank < 0:
                            edge = pattern.search(tail + bytes(view[: min(n, 2)]))
                            if edge is not None and edge.start() < len(tail):
                                first_blank = pos - len(tail) + edge.start()
                            else:
                                hit = pattern.search(buf, 0, n)
                                if hit is not None:
                                    first_blank = pos + hit.start()
                        if buf[n - 1] not in (10, 13):
                            last_content = pos + n
                        else:
                            stripped = len(bytes(view[:n]).rstrip(b"\r\n"))
                            if stripped:
                                last_content = pos + stripped
                        tail = bytes(view[max(n - 2, 0) : n])
                    pos += n
        finally:
            view.release()
        self.md5 = h.hexdigest()
        self.interior_blank = first_blank >= 0 and first_blank + 1 < last_content

    def _run_gz(self) -> None:
        h = hashlib.md5()
        dec = zlib.decompressobj(wbits=47)
        prev, pos, first_blank, last_content, pattern = b"", 0, -1, -1, b""
        with open(self.path, "rb") as f:
            while (chunk := f.read(_CHUNK)) and not self.cancelled.is_set():
                h.update(chunk)
                if not self.check_blank:
                    continue
                data = dec.decompress(chunk)
                while dec.eof and dec.unused_data:  # multi-member gzip
                    rest = dec.unused_data
                    dec = zlib.decompressobj(wbits=47)
                    data += dec.decompress(rest)
                if not data:
                    continue
                if not pattern:
                    nl = data.find(b"\n")
                    pattern = b"\n\r\n" if nl > 0 and data[nl - 1] == 13 else b"\n\n"
                if first_blank < 0:
                    buf = prev + data
                    hit = buf.find(pattern)
                    if hit >= 0:
                        first_blank = pos - len(prev) + hit
                    prev = buf[-(len(pattern) - 1) :]
                stripped = len(data.rstrip(b"\r\n"))
                if stripped:
                    last_content = pos + stripped
                pos += len(data)
        self.md5 = h.hexdigest()
        self.interior_blank = first_blank >= 0 and first_blank + 1 < last_content

    def result(self) -> tuple[str, bool]:
        self.join()
        if self.cancelled.is_set():  # a digest of part of the file must never be reported
            raise RuntimeError(f"{self.path.name}: its hash was cancelled")
        if self.error is not None:
            if isinstance(self.error, OSError | zlib.error | EOFError):
                raise ContractError(f"{self.path.name}: cannot read the file: {self.error}")
            raise self.error
        assert self.md5 is not None
        return self.md5, self.interior_blank


def start_hashers(sources: dict[str, Source | None]) -> None:
    """Hash every present file, one after the other in table order, from now on.

    Why now and not beside each table's scan: the big event file is hashed while the small
    tables before it are read (on one core), instead of taking a core from its own scan.
    """
    previous = None
    for src in sources.values():
        if src is not None:
            src.hasher = previous = Hasher(src.path, src.kind == "csv", after=previous)
            previous.start()


def stop_hashers(sources: dict[str, Source | None]) -> None:
    """Cancel and wait for the hashers still running (the run is over, or failed)."""
    hashers = [src.hasher for src in sources.values() if src is not None and src.hasher]
    for hasher in hashers:
        hasher.cancel()
    for hasher in hashers:
        hasher.join()


def rewrite_blank_lines(src: Path, ncols: int, dst: Path) -> None:
    """Rare path: a copy where each blank line inside the file becomes ',,...' (all empty).

    DuckDB skips blank lines but counts them in the line numbers it reports, so a blank line
    becomes a row of empty values instead: every later line number stays exact, and the
    row is quarantined as malformed_row. The file is read whole (memory ~ its size).
    """
    data = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
    body = data.rstrip(b"\r\n")
    filler = b"," * max(ncols - 1, 1)
    body = re.sub(rb"\n(?=\r?\n)", b"\n" + filler, body)
    dst.write_bytes(body + data[len(body):])


def scan_sql(src: Source, path: Path) -> str:
    """SELECT of the raw text r_<col> of every contract column, and _empty."""
    t = src.table
    if src.kind == "csv":
        file_cols = [f"c{i}" for i in range(len(src.names))]
        spec = ", ".join(f"{lit(fc)}: 'VARCHAR'" for fc in file_cols)
        # nullstr is a byte no export holds, so an empty field reads as '' (made NULL below):
        # DuckDB forgives a line's first surplus field when it is NULL, which would keep
        # `4,2024-01-05,Google, Inc,,` (six fields for five columns) as a shifted row
        reader = (
            f"read_csv({lit(path)}, header = true, auto_detect = false, "
            f"columns = {{{spec}}}, delim = ',', quote = '\"', escape = '\"', "
            f"nullstr = {lit(_NEVER)}, strict_mode = true, store_rejects = true, "
            f"rejects_table = {lit('rej_' + t.name)}, "
            f"rejects_scan = {lit('rejscan_' + t.name)})"
        )
        cols = {fc: f"NULLIF({qi(fc)}, '')" for fc in file_cols}
    else:
        file_cols = list(src.header)
        reader = f"read_parquet({lit(path)})"
        cols = {fc: qi(fc) for fc in file_cols}
    select = []
    for c in t.columns:
        if c.name in src.mapping:
            fc = cols[file_cols[src.mapping[c.name]]]
            select.append(f"CAST({fc} AS VARCHAR) AS r_{c.name}")
        else:
            select.append(f"CAST(NULL AS VARCHAR) AS r_{c.name}")
    empty = " AND ".join(f"{cols[fc]} IS NULL" for fc in file_cols)
    return f"SELECT {', '.join(select)}, ({empty}) AS _empty FROM {reader}"
