"""Schemathesis hooks for tests/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

One rejection of schema-valid data is by design and cannot be said in JSON Schema: ``since`` after ``until``
(each valid alone) is a 422. This check is schemathesis's own positive_data_acceptance (run in its place)
except for exactly that answer.
"""

from __future__ import annotations

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance


@schemathesis.check
def positive_data_acceptance_but_inverted_ranges(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                                                 case: schemathesis.Case) -> bool | None:
    query = case.query or {}
    if response.status_code == 422 and query.get("since") not in (None, "") and query.get("until") not in (None, ""):
        errors = response.json().get("detail") or [{}]
        if len(errors) == 1 and str(errors[0].get("msg", "")).startswith("Invalid range: since"):
            return None
    return positive_data_acceptance(ctx, response, case)
