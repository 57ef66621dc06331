"""Write <pops>/unlabelled.json: the fab's unlabelled chips for egis-distil, i.e. the labelled
chips' spec (the same variability model) with a seed of its own (3) and COUNT chips.

    python docs/results/distil/unlabelled_spec.py POPS/<variability> COUNT
"""

import json
import sys
from pathlib import Path

base, count = Path(sys.argv[1]), int(sys.argv[2])
spec = json.loads((base / "labelled.json").read_text())
spec.update(seed=3, count=count, note="the fab's unlabelled chips (egis-distil): the labelled chips' spec, seed 3")
(base / "unlabelled.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
