"""Periodic reports (issue #16): forms per period kind, deadlines per level, the submit / approve /
return / reopen workflow committed step by step, frozen figures, completeness and on-time rates.

  forms.py     pure: period kinds and cut-offs, the fields of each form, validation, deadlines
  workflow.py  pure: who may take which step from which status
  store.py     the reports and their step documents (a unique insert is the compare-and-set)
  service.py   scope, hierarchy and computed figures from reporting's live views
  api.py       the HTTP blueprint (/api/v1/periodic/...)
  (relay)      `python -m platformkit.run relay reporting`: the steps' outbox to reporting.events
"""
