"""Demo data: realistic sample complaints for any charter, and a CRM filled with them.

* ``sample_complaints``: the generator (pure), driven by a loaded charter's clocks and
  calendar; ``office_days`` its tables of the calendar; ``flavour`` its words.
* ``bundled_charters``: a bundled charter by name or any charter file by path.
* ``seeding``: the generated complaints written into a CRM through the field mapping
  (``crmsync demo``, the sync benchmark, tests).

Nothing else in crmsync depends on this package; the CLI imports it on use.
"""
