"""How the workbench compares the header cells of CSV exports it reads.

One normalisation for every export profile (vendor search audits in
``governance/vendor_profiles.yaml``, vendor read exports in ``read_profiles.yaml``), so that
"Org Name", "org_name", "ORG-NAME" and "orgName" name the same column everywhere.
"""

from __future__ import annotations

import re

__all__ = ["header_key"]


def header_key(name: str) -> str:
    """A header name normalised for comparison: lower case, letters and digits only.

    Examples
    --------
    >>> header_key(" Org_Name "), header_key("Case #"), header_key("orgName")
    ('orgname', 'case', 'orgname')
    """
    return re.sub(r"[^0-9a-z]", "", name.lower())
