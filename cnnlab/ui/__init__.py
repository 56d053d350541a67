"""What the pages share on the Streamlit side (the only room that imports Streamlit).

- `navigation`: deep links on a fresh server run through app.py.
- `owner`: whose jobs these are (a per-browser owner token).
- `job_progress`: one drawing of a job's progress for Train and Transfer.
- `safe`: untrusted text (file names, class names, URL values) shown as text.
- `guard`: `one_line_errors(what)`, an unexpected error on a page as one line, no traceback.
- `explain`: the explanation lab (maps, scores, sanity check, feature visualization) drawn
  for Classify and Train.
"""
