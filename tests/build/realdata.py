"""Real shared records as cleaned Documents, for the step tests."""

from __future__ import annotations

import json
from itertools import islice

from imcm_build.document import Document
from imcm_build.records import parse_record
from imcm_build.report import StepReport
from imcm_build.steps.clean import Clean
from tests.conftest import shared_path


def cleaned_real_docs(n_records: int) -> list[Document]:
    """The first `n_records` of douban-public/records.jsonl, through the clean step."""
    path = shared_path("douban-public/records.jsonl")
    with path.open(encoding="utf-8") as handle:
        docs = [
            Document.from_record(parse_record(json.loads(line), f"{path}:{number}"))
            for number, line in enumerate(islice(handle, n_records), start=1)
        ]
    return Clean().run(docs, StepReport("clean"))
