"""JSON for reference files that people read in diffs: indented, but short
containers and lists of scalars kept on one line. Shared by the scripts
that write test references (scripts/reference/, tests/hf/)."""

import json


def compact_json(obj, indent: int = 0, width: int = 240) -> str:
    """Indented JSON; a container whose one-line form fits `width`, or a
    list of scalars, stays on one line."""
    flat = json.dumps(obj, ensure_ascii=False)
    scalar_list = isinstance(obj, list) and all(
        not isinstance(x, (list, dict)) for x in obj)
    if not isinstance(obj, (list, dict)) or scalar_list or len(flat) <= width:
        return flat
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{pad}{json.dumps(k)}: {compact_json(v, indent + 1, width)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + compact_json(v, indent + 1, width) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
