"""Export the JSON Schema of every topic's message type to ``schemas/json/``.

Run ``python -m schemas.export`` after changing a model; a test fails while the committed files
differ from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.topics import ALL_TOPICS

JSON_DIR = Path(__file__).parent / "json"


def rendered() -> dict[str, str]:
    out: dict[str, str] = {}
    for topic in ALL_TOPICS:
        schema = topic.schema.model_json_schema(mode="serialization")
        schema["$id"] = f"urn:entsync:topic:{topic.name}"
        schema["description"] = f"{topic.doc}. Kafka key: {topic.key}."
        out[f"{topic.name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (JSON_DIR / name).write_text(text)
        print(f"wrote {JSON_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
