"""``report.json``, the machine-readable report: made here from the stages' typed results, and only here.

One module per section: the document's shell and `model` (`document`), an example's entry
(`examples`), an answer's entry (`answers`), the metrics and data groups (`metrics`), the
dataset-level views (`dataset`: heads, decision spaces, compare), the probes (`probes`) and the
prompt variants (`variants`). Each report kind picks the sections it has (`attnreport.kinds`);
no writer here asks which kind it writes for.

Pages and templates read the report these modules make; no other module adds to it. Its shape is
documented in the README (schema 1); indices are 0-based and lists over tokens have one value
per token. An attribution over larger units (words, sentences, lines) says so: its ``unit``, its
``units`` as character spans, and one value per unit.
"""

from attnreport.site.report.document import REPORT_FILE, SCHEMA, report_document, write_report

__all__ = ["REPORT_FILE", "SCHEMA", "report_document", "write_report"]
