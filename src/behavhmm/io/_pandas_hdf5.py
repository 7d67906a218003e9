"""pandas HDF5 stores (PyTables ``fixed`` and ``table`` layouts) read with h5py.

Nothing is unpickled.

pandas writes DataFrames to HDF5 through PyTables, which stores some
metadata (column labels, level names, ...) as pickles in HDF5 attributes and
unpickles every attribute that looks like a pickle when the file is read.
A crafted file therefore runs code in ``pandas.read_hdf``. This module reads
the two layouts pandas writes with h5py instead, and decodes the few pickled
attributes it needs with `load_plain_pickle`, an unpickler whose
``find_class`` admits only a handful of built-in container and scalar types
(the "Restricting Globals" pattern of the Python documentation): anything
else is refused with a ``ValueError``, so no pickle can import or call code.

References
----------
- pandas' HDF5 writer and reader: ``pandas/io/pytables.py``
  (``BlockManagerFixed``, ``AppendableFrameTable``).
- Restricting globals: https://docs.python.org/3/library/pickle.html#restricting-globals
"""

from __future__ import annotations

import builtins
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "PandasFrame",
    "UnsafePickleError",
    "load_plain_pickle",
    "pandas_keys",
    "read_pandas_frame",
]

#: The only globals a metadata pickle may name: built-in data types, whose
#: construction from other data runs no code of the file's choosing.
_ALLOWED_GLOBALS = frozenset(
    {"list", "tuple", "dict", "set", "frozenset", "str", "int", "float", "bool", "complex"}
)
_ALLOWED_MODULES = frozenset({"builtins", "__builtin__"})  # protocol 0-2 pickles say __builtin__

#: Largest pickled attribute decoded (metadata pickles of pose tables are a few kB).
MAX_PICKLE_BYTES = 16 * 2**20


class UnsafePickleError(ValueError):
    """A pickle that names a global outside the plain data types, or is too large: never decoded."""


class _Forbidden(pickle.UnpicklingError):
    pass


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds only lists, tuples, dicts, sets, strings and numbers."""

    def find_class(self, module, name):
        if module in _ALLOWED_MODULES and name in _ALLOWED_GLOBALS:
            return getattr(builtins, name)
        raise _Forbidden(f"the pickle names the global {module}.{name}")

    def persistent_load(self, pid):
        raise _Forbidden("the pickle holds a persistent id")


def load_plain_pickle(raw: bytes, where: str):
    """Decode a pickle of plain data (lists, tuples, dicts, sets, strings, numbers).

    Parameters
    ----------
    raw : bytes
        The pickle.
    where : str
        What to name in an error (file and attribute).

    Returns
    -------
    object
        The decoded data.

    Raises
    ------
    UnsafePickleError
        A ``ValueError``: if ``raw`` is larger than 16 MiB, or names any
        global other than the built-in types listed in ``_ALLOWED_GLOBALS``
        (a pickle that would import or call code), or a persistent id.
    ValueError
        If ``raw`` is not a well-formed pickle.
    """
    if len(raw) > MAX_PICKLE_BYTES:
        raise UnsafePickleError(
            f"{where}: pickled metadata of {len(raw)} bytes is too large to be a pose table's."
        )
    try:
        return _PlainDataUnpickler(io.BytesIO(raw)).load()
    except _Forbidden as exc:
        raise UnsafePickleError(
            f"{where} holds pickled metadata that behavhmm does not decode ({exc}); only lists, "
            "tuples, dicts, strings and numbers are read, "
            "and nothing that could import or run code."
        ) from None
    except (
        Exception
    ) as exc:  # malformed data: any of UnpicklingError, EOFError, ValueError, TypeError, ...
        raise ValueError(
            f"{where} holds pickled metadata that cannot be read ({type(exc).__name__}: {exc})."
        ) from None


def _looks_pickled(raw: bytes) -> bool:
    # PyTables' rule: a string attribute ending in "." is unpickled (except "0" and "0.").
    return raw.endswith(b".") and raw not in (b"0", b"0.")


def _plain_attr(node, key: str, where: str, default=None):
    """An attribute as PyTables returns it.

    Numbers come back as Python numbers and strings as str (pickles decoded).
    """
    if key not in node.attrs:
        return default
    try:
        value = node.attrs[key]
    except Exception as exc:  # types h5py cannot read
        raise ValueError(f"{where}: attribute {key!r} cannot be read ({exc}).") from None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        raw = bytes(value)
        if _looks_pickled(raw):
            try:
                return load_plain_pickle(raw, f"{where}@{key}")
            except UnsafePickleError:
                raise
            except ValueError:
                pass  # PyTables keeps strings that end in "." but are no pickle as they are
        return raw.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _pickled_attr(node, key: str, where: str):
    """An attribute that must be a (plain-data) pickle."""
    if key not in node.attrs:
        raise ValueError(f"{where}: the attribute {key!r} of a pandas table is missing.")
    try:
        value = node.attrs[key]
    except Exception as exc:
        raise ValueError(f"{where}: attribute {key!r} cannot be read ({exc}).") from None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if not isinstance(value, bytes | np.bytes_):
        raise ValueError(f"{where}: attribute {key!r} is not pickled metadata.")
    return load_plain_pickle(bytes(value), f"{where}@{key}")


@dataclass(frozen=True)
class PandasFrame:
    """The content of one pandas DataFrame stored in HDF5, as plain arrays.

    Attributes
    ----------
    values : ndarray of float64, shape (n_rows, n_columns)
    columns : list of tuple or str
        One label per column (tuples for MultiIndex columns), in the DataFrame's order.
    column_names : list of str or None
        Names of the column levels.
    index : ndarray of shape (n_rows,) or None
        The row labels when they are one plain numeric index; None otherwise.
    """

    values: np.ndarray
    columns: list
    column_names: list
    index: np.ndarray | None


def pandas_keys(f) -> list[str]:
    """Keys (``/name``) of the groups of an open h5py file that hold a pandas object."""
    keys: list[str] = []

    def visit(name, node):
        if hasattr(node, "keys") and "pandas_type" in node.attrs:
            keys.append("/" + name)

    f.visititems(visit)
    return keys


def _decode_strings(data: np.ndarray, encoding: str, errors: str, where: str) -> list[str]:
    out = []
    try:
        for v in np.asarray(data).ravel():
            out.append(
                bytes(v).decode(encoding, errors) if isinstance(v, bytes | np.bytes_) else str(v)
            )
    except (LookupError, UnicodeDecodeError, TypeError) as exc:
        raise ValueError(
            f"{where}: labels cannot be decoded with encoding {encoding!r} ({exc})."
        ) from None
    return out


def _numeric(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype.kind not in "fiub":
        raise ValueError(
            f"{where}: values of dtype {arr.dtype} are not numbers; "
            "a pose table holds only numbers."
        )
    return np.asarray(arr, dtype=np.float64)


def _dataset(group, key: str, where: str):
    import h5py

    node = group.get(key)
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{where}: the pandas table lacks the array {key!r}.")
    if node.dtype.kind == "O" or _plain_attr(node, "PSEUDOATOM", where) == "object":
        raise ValueError(
            f"{where}/{key} is a node of pickled Python objects; "
            "behavhmm never unpickles file content."
        )
    return node


# --- fixed layout ---------------------------------------------------------------------------------


def _fixed_index_node(group, key: str, where: str, encoding: str, errors: str):
    """(labels, name) of one ``regular`` index node of the fixed layout."""
    node = _dataset(group, key, where)
    kind = _plain_attr(node, "kind", where)
    name = _plain_attr(node, "name", where)
    data = node[()]
    shape = _plain_attr(node, "shape", where)
    if shape is not None and int(np.prod(shape)) == 0:
        data = np.empty(0, dtype=data.dtype)
    if kind == "string":
        labels: list = _decode_strings(data, encoding, errors, f"{where}/{key}")
    elif kind in ("integer", "float", "bool"):
        labels = list(np.asarray(data).ravel())
    else:
        raise ValueError(f"{where}/{key}: index labels of kind {kind!r} are not supported.")
    return labels, (None if name is None else str(name)), kind


def _fixed_index(group, key: str, where: str, encoding: str, errors: str):
    """(labels, level names, kind) of the index ``key`` (``axis0``, ``block0_items``, ...)."""
    variety = _plain_attr(group, f"{key}_variety", where)
    if variety == "regular":
        labels, name, kind = _fixed_index_node(group, key, where, encoding, errors)
        return labels, [name], kind
    if variety != "multi":
        raise ValueError(f"{where}: unknown index variety {variety!r} of {key}.")
    nlevels = _plain_attr(group, f"{key}_nlevels", where)
    if not isinstance(nlevels, int) or not 1 <= nlevels <= 32:
        raise ValueError(f"{where}: {key} has an invalid number of levels {nlevels!r}.")
    levels, codes, names = [], [], []
    for i in range(nlevels):
        labels, name, _ = _fixed_index_node(group, f"{key}_level{i}", where, encoding, errors)
        code = np.asarray(_dataset(group, f"{key}_label{i}", where)[()]).ravel()
        if code.dtype.kind not in "iu" or (
            code.size and (code.min() < 0 or code.max() >= len(labels))
        ):
            raise ValueError(
                f"{where}: {key}_label{i} holds codes outside its {len(labels)} labels."
            )
        levels.append(labels)
        codes.append(code)
        names.append(name)
    if len({len(c) for c in codes}) > 1:
        raise ValueError(f"{where}: the levels of {key} have different lengths.")
    n = len(codes[0])
    tuples = [tuple(levels[i][codes[i][j]] for i in range(nlevels)) for j in range(n)]
    return tuples, names, "multi"


def _read_fixed(group, where: str) -> PandasFrame:
    encoding = _plain_attr(group, "encoding", where, "UTF-8") or "UTF-8"
    errors = _plain_attr(group, "errors", where, "strict") or "strict"
    if _plain_attr(group, "ndim", where) != 2:
        raise ValueError(f"{where}: only two-dimensional pandas frames are read.")
    columns, names, _ = _fixed_index(group, "axis0", where, encoding, errors)
    rows, _, row_kind = _fixed_index(group, "axis1", where, encoding, errors)
    n_rows = len(rows)
    position = {label: j for j, label in enumerate(columns)}
    if len(position) != len(columns):
        raise ValueError(f"{where}: the column labels are not unique.")
    values = np.full((n_rows, len(columns)), np.nan)
    nblocks = _plain_attr(group, "nblocks", where)
    if not isinstance(nblocks, int) or not 0 <= nblocks <= len(columns):
        raise ValueError(f"{where}: invalid number of value blocks {nblocks!r}.")
    for i in range(nblocks):
        items, _, _ = _fixed_index(group, f"block{i}_items", where, encoding, errors)
        node = _dataset(group, f"block{i}_values", where)
        shape = _plain_attr(node, "shape", where)
        if shape is not None and int(np.prod(shape)) == 0:
            block = np.empty((n_rows, len(items)))
        else:
            block = _numeric(node[()], f"{where}/block{i}_values")
            if not _plain_attr(node, "transposed", where, False):
                block = block.T
        if block.shape != (n_rows, len(items)):
            raise ValueError(
                f"{where}: block{i}_values has shape {block.shape}, "
                f"expected ({n_rows}, {len(items)})."
            )
        _place_columns(values, block, items, position, strict=f"{where}: block {i}")
    index = np.asarray(rows) if row_kind in ("integer", "float") else None
    return PandasFrame(values, columns, names, index)


# --- table layout ---------------------------------------------------------------------------------


def _labels(value, where: str, key: str) -> list:
    """Column labels decoded from a pickle: strings, numbers, or tuples of those."""
    plain = (str, int, float)
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}@{key}: expected a list of column labels.")
    out = []
    for label in value:
        if isinstance(label, tuple) and all(isinstance(v, plain) for v in label):
            out.append(tuple(label))
        elif isinstance(label, plain):
            out.append(label)
        else:
            raise ValueError(
                f"{where}@{key}: a column label of type {type(label).__name__} is not supported."
            )
    return out


def _place_columns(values, block, items, position, strict: str | None = None):
    """Copy each column of ``block`` into the column of ``values`` that its label in ``items``
    names; a label the table does not list is skipped, or raises when ``strict`` (the block, as
    messages name it) is given."""
    for k, label in enumerate(items):
        j = position.get(label)
        if j is None:
            if strict is not None:
                raise ValueError(f"{strict} holds a column {label!r} the table does not list.")
            continue
        values[:, j] = block[:, k]


def _read_table(group, where: str) -> PandasFrame:
    import h5py

    table = group.get("table")
    if not isinstance(table, h5py.Dataset) or table.dtype.names is None:
        raise ValueError(f"{where}: the pandas table has no 'table' dataset.")
    table_type = _plain_attr(group, "table_type", where)
    if table_type != "appendable_frame":
        raise ValueError(
            f"{where}: pandas tables of type {table_type!r} are not read; "
            "re-save it as a plain frame."
        )
    columns, names = _table_columns(group, where)
    values_cols = _pickled_attr(group, "values_cols", where)
    if not isinstance(values_cols, list) or not all(isinstance(v, str) for v in values_cols):
        raise ValueError(f"{where}@values_cols: expected a list of block names.")
    data = table[()]
    values = _table_values(table, data, values_cols, columns, where)
    return PandasFrame(values, columns, names, _table_index(group, table, data, where))


def _table_columns(group, where: str):
    """The column labels of a ``table``-layout frame, and the names of their levels (or None)."""
    non_index = _pickled_attr(group, "non_index_axes", where)
    if (
        not isinstance(non_index, list)
        or len(non_index) != 1
        or not isinstance(non_index[0], tuple | list)
        or len(non_index[0]) != 2
        or non_index[0][0] != 1
    ):
        raise ValueError(
            f"{where}@non_index_axes: expected the column labels of a two-dimensional frame."
        )
    columns = _labels(non_index[0][1], where, "non_index_axes")
    info = _pickled_attr(group, "info", where) if "info" in group.attrs else {}
    column_info = info.get(1, {}) if isinstance(info, dict) else {}
    names = column_info.get("names") if isinstance(column_info, dict) else None
    if not isinstance(names, list | tuple) or not all(
        n is None or isinstance(n, str) for n in names
    ):
        names = None
    return columns, names


def _table_values(table, data, values_cols, columns, where: str) -> np.ndarray:
    """The values of a ``table``-layout frame, gathered from its column blocks (NaN elsewhere)."""
    twhere = f"{where}/table"
    fields = table.dtype.names
    position = {label: j for j, label in enumerate(columns)}
    n_rows = len(data)
    values = np.full((n_rows, len(columns)), np.nan)
    for block_name in values_cols:
        if block_name not in fields:
            raise ValueError(f"{where}: the table lacks the column block {block_name!r}.")
        items = _labels(
            _pickled_attr(table, f"{block_name}_kind", twhere), twhere, f"{block_name}_kind"
        )
        block = _numeric(data[block_name], f"{where}/table/{block_name}").reshape(n_rows, -1)
        if block.shape[1] != len(items):
            raise ValueError(
                f"{where}: the block {block_name} has {block.shape[1]} columns "
                f"for {len(items)} labels."
            )
        _place_columns(values, block, items, position)
    return values


def _table_index(group, table, data, where: str) -> np.ndarray | None:
    """The row index of a ``table``-layout frame when it is one numeric level, else None."""
    levels = _plain_attr(group, "levels", where, 1)
    index = None
    if (
        levels == 1
        and "index" in table.dtype.names
        and _plain_attr(table, "index_kind", f"{where}/table") in ("integer", "float")
    ):
        index = np.asarray(data["index"]).ravel()
        if index.dtype.kind not in "iuf":
            index = None
    return index


def read_pandas_frame(path: Path, key: str) -> PandasFrame:
    """The DataFrame stored under ``key`` of a pandas HDF5 file, read with h5py.

    Parameters
    ----------
    path : Path
    key : str
        The group, e.g. ``"/df_with_missing"``.

    Returns
    -------
    PandasFrame

    Raises
    ------
    ValueError
        If the group is not a pandas DataFrame in the ``fixed`` or ``table``
        layout with numeric values, is malformed, or holds pickled metadata
        beyond plain lists, tuples, dicts, strings and numbers.
    """
    import h5py

    where = f"{path}:{key}"
    with h5py.File(path, "r") as f:
        group = f.get(key)
        if group is None or not hasattr(group, "keys"):
            raise ValueError(f"{where}: no such pandas table.")
        pandas_type = _plain_attr(group, "pandas_type", where)
        if pandas_type == "frame":
            return _read_fixed(group, where)
        if pandas_type == "frame_table":
            return _read_table(group, where)
        raise ValueError(f"{where}: a pandas object of type {pandas_type!r} is not a DataFrame.")
