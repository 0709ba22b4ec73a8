"""Speed of a time-series training step against the encoder's own forward/backward.

    python benchmarks/series_speed.py                       # TS2Vec on ArrowHead-sized series
    python benchmarks/series_speed.py --method cpc --encoder gru --length 500

Full step: the views made on the batch (TS2Vec's crops), the method's forward (the encoder on
both views, the hierarchical loss), backward and the AdamW step. Encoder only: the encoder's
forward on the same two (pre-made) views, a sum as the loss, backward and the same optimizer
step. Both measured alternately in one process (rounds of `--steps` each, median), so machine
noise hits both alike; the ratio full / encoder is the cost of everything that is not the
encoder (the image methods run at 1.00x, docs/performance.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from selfsup.augment.series_views import RECIPES
from selfsup.encoders import create_encoder
from selfsup.methods import create_method, method_spec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--method", default="ts2vec")
    p.add_argument("--encoder", default="ts2vec_encoder")
    p.add_argument("--batch", type=int, default=8, help="TS2Vec's batch")
    p.add_argument("--length", type=int, default=251, help="series length (ArrowHead: 251)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.length)
    encoder = create_encoder(args.encoder, in_chans=args.channels)
    method = create_method(args.method, encoder)
    views = RECIPES[method_spec(args.method).views](args.length)
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3)
    g = torch.Generator()

    def full_step(_: int) -> None:
        loss = method.training_step(views(x, generator=g)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    made: list[list[torch.Tensor]] = []

    def encoder_step(i: int) -> None:
        loss = sum(encoder.forward_features(v).sum() for v in made[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    times: dict[str, list[float]] = {"full": [], "encoder": []}
    for r in range(args.rounds + 1):  # round 0 warms up
        # The same crops for both (TS2Vec draws crop lengths per batch): the encoder-only
        # round gets them made before its clock starts.
        g.manual_seed(r)
        made[:] = [[v for v in views(x, generator=g) if v.dim() == 3] for _ in range(args.steps)]
        for name, fn in (("full", full_step), ("encoder", encoder_step)):
            g.manual_seed(r)
            t0 = time.perf_counter()
            for i in range(args.steps):
                fn(i)
            if r:
                times[name].append((time.perf_counter() - t0) / args.steps)
    full, enc = (statistics.median(times[k]) for k in ("full", "encoder"))
    print(f"{args.method} + {args.encoder}, batch {args.batch} x {args.channels} x "
          f"{args.length}, {args.threads} threads, fp32")  # fmt: skip
    print(f"full step     {1000 * full:7.1f} ms  {args.batch / full:7.1f} series/s")
    print(f"encoder only  {1000 * enc:7.1f} ms  {args.batch / enc:7.1f} series/s")
    print(f"ratio full / encoder: {full / enc:.2f}x")


if __name__ == "__main__":
    main()
