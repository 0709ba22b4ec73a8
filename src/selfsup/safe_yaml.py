"""Reading YAML a user or a received run folder hands us, bounded and without code.

`yaml.safe_load` already refuses Python tags, but not an alias bomb: a few hundred bytes of
nested anchors expand to billions of nodes once anything walks or copies the result (a 314-byte
bomb ran 200 s and then ran out of memory). The document is composed first, its size *with
aliases expanded* counted on the node graph (memoized, so counting itself stays linear), and only
a document under the limits is constructed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: the largest recipe in configs/ is under 2 KiB
MAX_NODES = 100_000  # scalars + collections after alias expansion; configs have ~100


class YAMLFileError(ValueError):
    """A YAML file or value that cannot be used; the message names it and says why."""


def read_yaml_file(path: str | Path) -> Any:
    """The parsed content of the YAML file `path` (None when empty), under the bounds above."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise YAMLFileError(f"{path}: is a folder; pass a YAML file (e.g. configs/*.yaml)")
    if not path.exists():
        raise YAMLFileError(f"{path}: file not found")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YAMLFileError(
            f"{path}: {size:,} bytes; a config is at most {MAX_BYTES:,} bytes. Is this the "
            "right file?"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YAMLFileError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file "
            "as UTF-8"
        ) from e
    return parse_yaml(text, str(path))


def parse_yaml(text: str, where: str) -> Any:
    """Parse `text` (from `where`, for messages) with safe constructors, bounded in expansion."""
    if len(text) > MAX_BYTES:
        raise YAMLFileError(f"{where}: {len(text):,} characters; at most {MAX_BYTES:,}")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise YAMLFileError(
                f"{where}: expands to more than {MAX_NODES:,} values through anchors and "
                "aliases; a config needs no such nesting. Write the values out."
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise YAMLFileError(
            f"{where}: not plain YAML ({e}). Python tags are not allowed (!!python/... is "
            "refused, never constructed): write plain values."
        ) from e
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes under `node` counting each alias's target every time it is used."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a cycle (a recursive alias) counts as too large
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, 10 * MAX_NODES)  # capped: sums of huge counts stay small ints
    return memo[key]
