#!/usr/bin/env bash
# The decisive study of issue 17 (docs/results.md): the acc@compr. grid, the study's jobs in
# priority order, then the tables and figures, all through python -m imcompress.studies.decisive
# (protocol: conf/experiment/study/decisive.yaml). Resumable: run it again after an interruption;
# completed jobs are skipped, others resume from their checkpoints.
# Records (committed): results/decisive/ (jobs.tsv, grid_jobs.tsv, matched.json, grid.csv,
# plans/, records/); job folders: STUDY_DIR/{grid,runs,plans}.
# Usage: launch/study_decisive.sh STUDY_DIR DENSE_CKPT [run options, e.g. --max-priority 2]
#   env: PY=.venv/bin/python  REPORT_OUT=results/decisive/report
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STUDY=${1:?usage: launch/study_decisive.sh STUDY_DIR DENSE_CKPT [run options]}
DENSE=${2:?usage: launch/study_decisive.sh STUDY_DIR DENSE_CKPT [run options]}
shift 2
driver() { "$PY" -m imcompress.studies.decisive "$@"; }
driver grid "$STUDY" --dense "$DENSE" || echo "grid: some points failed (see above); continuing"
driver run "$STUDY" --dense "$DENSE" "$@"
status=$?
driver report results/decisive --out "${REPORT_OUT:-results/decisive/report}" || status=1
exit $status
