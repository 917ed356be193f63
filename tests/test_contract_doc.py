"""docs/contract.md's worked example runs as written and its family passes the contract's checks."""
import re
from pathlib import Path

import torch

import argen
from argen.models import FAMILIES
from test_models import receptive_fields

DOC = Path(__file__).resolve().parent.parent / "docs" / "contract.md"


def test_worked_example_runs_and_follows_the_contract():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    namespace = {"__name__": "argen.models.markov"}
    try:
        for code in blocks:
            exec(compile(code, str(DOC), "exec"), namespace)
        model, frames = namespace["model"], namespace["frames"]
        assert FAMILIES["pixel-markov"] is namespace["PixelMarkov"]
        assert len(frames) == 28 and frames[-1].drawn.all() and namespace["bits"].shape == (2,)
        assert torch.equal(argen.load(namespace["folder"])(frames[-1].image, torch.tensor([7, 3])),
                           model(frames[-1].image, torch.tensor([7, 3])))
        small = namespace["PixelMarkov"](codec=argen.models.Levels(3, (1, 3, 4)), embed_dim=4).eval()
        seen = receptive_fields(small)
        n = small.num_values
        assert torch.equal(seen, torch.ones(n, n, dtype=torch.bool).triu(1) & ~torch.ones(n, n, dtype=torch.bool).triu(2))
    finally:
        FAMILIES.pop("pixel-markov", None)


def test_the_stepper_shown_is_vars_own():
    """The page's example of a stepper built from the toolkit is VAR's, as written in var.py."""
    import inspect
    import textwrap

    from argen.models.var import VAR

    source = textwrap.dedent(inspect.getsource(VAR.fast_sampler))
    assert f"```python\n{source}```" in DOC.read_text()
