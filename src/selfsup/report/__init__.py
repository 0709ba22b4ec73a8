"""What a user sees after a run: plots and one HTML report per run folder.

`write_report(run_dir)` writes run_dir/report.html (pictures embedded, readable offline) and
run_dir/report/*.png from the folder alone; `snapshot.collect` gathers the arrays it needs at
the end of `selfsup pretrain` (report_data.npz).
"""

from selfsup.report.html import write_report

__all__ = ["write_report"]
