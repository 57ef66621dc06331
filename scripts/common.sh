# Shared by the experiment scripts; sourced, not run (needs $py: the project's python).

# seed_sigma MODEL: the seed paper's sigma_tot for a model: 0.15 for MobileNet (at 0.3 its
# chips fall to ~18% mean accuracy, near chance, and the cutoffs stop meaning anything),
# 0.3 for the rest
seed_sigma() { case "$1" in *mobilenet) echo 0.15 ;; *) echo 0.3 ;; esac; }

# check_sigma SPEC.json SIGMA: stop (exit 2) when an existing population spec was made at
# another sigma_tot, so a folder is never reused silently across settings
check_sigma() {
  [ -f "$1" ] || return 0
  $py -c "import json,sys; p=json.load(open(sys.argv[1]))['params']; sys.exit(0 if abs(p['sigma_tot']-float(sys.argv[2]))<1e-12 else 1)" \
      "$1" "$2" || { echo "$1 was made at another sigma_tot than $2; use another OUT" >&2; exit 2; }
}
