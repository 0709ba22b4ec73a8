"""Cost of the log-mel front end per clip on the CPU, torch.stft against scipy.signal.stft.

    python benchmarks/audio_frontend.py                    # 256 one-second clips, 16 and 8 kHz
    python benchmarks/audio_frontend.py --threads 2 --rounds 9

Both paths compute the same log-mel (`audio_frontend.frontend_for(rate)`: 25 ms periodic Hann
window, 10 ms hop, reflect padding, Slaney filterbank, log(. + 1e-6)) of the same float32 batch:

  torch: LogMel.forward, torch.stft + filterbank matmul;
  scipy: scipy.signal.stft(boundary="even" (= reflect), padded=False, nperseg=win, nfft=n_fft)
         times the window sum (scipy scales the spectrum by 1 / sum(window)), then NumPy's matmul
         with the same filterbank. Its segments end-pad the window to n_fft where torch centres
         it: a linear phase, the same magnitudes.

The two are timed alternately (rounds of one batch each, median), so machine noise hits both
alike; the script checks that the outputs agree (max |difference| of the log-mels) and prints
the time per clip and the ratio scipy / torch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.signal
import torch

from selfsup.augment.audio_frontend import LogMel, frontend_for


def scipy_logmel(x: np.ndarray, fe: LogMel) -> np.ndarray:
    """The same front end on (N, S) float32 with scipy.signal.stft: -> (N, M, F)."""
    window = scipy.signal.get_window("hann", fe.win_length)  # periodic, as torch.hann_window
    _, _, spec = scipy.signal.stft(
        x,
        window=window,
        nperseg=fe.win_length,
        noverlap=fe.win_length - fe.hop_length,
        nfft=fe.n_fft,
        boundary="even",
        padded=False,
        axis=-1,
    )
    power = np.abs(spec * window.sum()) ** 2  # undo scipy's spectrum scaling
    return np.log(fe.filterbank.numpy() @ power + fe.eps)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(rate: int, batch: int, seconds: float, rounds: int) -> None:
    fe = frontend_for(rate)
    x = torch.randn(batch, 1, int(rate * seconds), generator=torch.Generator().manual_seed(0))
    x_np = x[:, 0].numpy()
    ours, theirs = fe(x)[:, 0].numpy(), scipy_logmel(x_np, fe)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    diff = np.abs(ours - theirs).max()
    t_torch, t_scipy = [], []
    for _ in range(rounds):
        t_torch.append(_timed(lambda: fe(x)))
        t_scipy.append(_timed(lambda: scipy_logmel(x_np, fe)))
    per_torch = statistics.median(t_torch) / batch * 1e6
    per_scipy = statistics.median(t_scipy) / batch * 1e6
    print(
        f"{rate:>6} Hz  {tuple(ours.shape[1:])!s:>10}  torch {per_torch:7.1f} us/clip  "
        f"scipy {per_scipy:7.1f} us/clip  scipy/torch {per_scipy / per_torch:5.2f}x  "
        f"max|d log-mel| {diff:.1e}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--rates", type=int, nargs="+", default=[16000, 8000])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch threads (scipy's FFT uses 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"batch {args.batch} x {args.seconds} s, {args.threads} torch thread(s), median of "
        f"{args.rounds} alternating rounds"
    )
    for rate in args.rates:
        bench(rate, args.batch, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
