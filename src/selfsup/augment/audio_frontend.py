"""Log-mel front end: waveforms (N, 1, S) -> log-mel spectrograms (N, 1, M, F), on their device.

Choices, and why:
  - `torch.stft`, so the front end runs inside the views on the training device with no copy to
    the host; on the CPU it is also faster than scipy.signal.stft with the same settings
    (benchmarks/audio_frontend.py prints the ratio) and equal to it within float32 rounding.
  - A periodic Hann window of `win_length` samples centred in an `n_fft`-point frame,
    center=True with reflect padding (torchaudio's MelSpectrogram defaults, the front end BYOL-A
    trains with; librosa before 0.10 too): frame f is centred on sample f * hop_length and a clip
    of S samples gives F = 1 + S // hop_length frames. Reflect, not zeros, so the first frame is
    not darkened by padding the clip never had.
  - Power spectrogram |X|^2 -> mel filterbank -> log(mel + eps).
  - The Slaney mel scale with area-normalized triangles (librosa.filters.mel's defaults, the
    filterbank behind BYOL-A's released weights, byol_a/dataset.py): every triangle has area 1,
    so a band's value is a power *density*, and wide high-frequency bands do not outweigh
    narrow low ones for a flat (white) spectrum.

NaN samples (the batch's end padding, "not part of the clip") are read as silence (0).
torchaudio is not used: it pins torch's exact version.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Slaney's mel scale (Auditory Toolbox; librosa.hz_to_mel with htk=False): linear below 1 kHz
# (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4).
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _LINEAR_HZ_PER_MEL  # 15
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(hz: Tensor) -> Tensor:
    """Slaney mel of frequencies in Hz (any shape, float)."""
    log_part = _BREAK_MEL + torch.log(hz.clamp_min(_BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return torch.where(hz >= _BREAK_HZ, log_part, hz / _LINEAR_HZ_PER_MEL)


def mel_to_hz(mel: Tensor) -> Tensor:
    """Inverse of `hz_to_mel` (any shape, float)."""
    log_part = _BREAK_HZ * torch.exp(_LOG_STEP * (mel - _BREAK_MEL))
    return torch.where(mel >= _BREAK_MEL, log_part, mel * _LINEAR_HZ_PER_MEL)


def mel_edges(n_mels: int, f_min: float, f_max: float) -> Tensor:
    """(n_mels + 2,) float64 Hz: band m rises from edge m, peaks at edge m + 1, ends at m + 2.

    Evenly spaced on the mel scale from f_min to f_max (librosa.mel_frequencies).
    """
    lo, hi = hz_to_mel(torch.tensor([f_min, f_max], dtype=torch.float64)).tolist()
    return mel_to_hz(torch.linspace(lo, hi, n_mels + 2, dtype=torch.float64))


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> Tensor:
    """Slaney-style mel filterbank with area normalization: (n_mels, n_fft // 2 + 1) float64.

    Row m is a triangle over the FFT bin frequencies k * sample_rate / n_fft: 0 at edge m, peak
    at edge m + 1 (its centre frequency), 0 at edge m + 2, scaled by 2 / (edge m+2 - edge m) so
    its area over frequency is 1 (librosa.filters.mel, norm="slaney"). Raises if a band holds no
    FFT bin (too many bands for n_fft): such a band would be a constant channel.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2} Hz, got {f_min}, {f_max}")
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_edges(n_mels, f_min, f_max)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    weights = torch.minimum(rising, falling).clamp_min(0) * (2 / (upper - lower))
    empty = (weights.amax(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"mel bands {empty} hold no FFT bin: use fewer bands or a longer n_fft")
    return weights


class LogMel(nn.Module):
    """Waveforms (N, 1, S) float -> log-mel spectrograms (N, 1, n_mels, 1 + S // hop_length).

    No parameters; the window and the filterbank are non-persistent buffers (derived from the
    arguments, so they stay out of checkpoints) that follow `.to(device)`, and `forward` also
    moves them to the input's device. NaN samples count as silence; silence gives log(eps).
    win_length None: n_fft. f_max None: sample_rate / 2.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
        win_length: int | None = None,
    ) -> None:
        super().__init__()
        win_length = win_length or n_fft
        if not 0 < win_length <= n_fft or hop_length <= 0:
            raise ValueError("need 0 < win_length <= n_fft and hop_length > 0")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.win_length, self.n_mels, self.eps = win_length, n_mels, eps
        self.f_min = f_min
        self.f_max = sample_rate / 2 if f_max is None else f_max
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, self.f_max).float()
        self.register_buffer("filterbank", fb, persistent=False)

    def frames(self, samples: int) -> int:
        """F, the number of frames of a clip of `samples` samples (center=True)."""
        return 1 + samples // self.hop_length

    def power(self, x: Tensor) -> Tensor:
        """Power spectrogram |STFT|^2: (N, 1, S) -> (N, n_fft // 2 + 1, F) float32."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(f"LogMel takes waveforms (N, 1, S), got {tuple(x.shape)}")
        wave = x[:, 0].float()
        wave = torch.where(wave.isnan(), 0.0, wave)  # NaN = not part of the clip = silence
        # Reflect needs more samples than the padding; a clip that short is padded with zeros.
        pad_mode = "reflect" if wave.shape[-1] > self.n_fft // 2 else "constant"
        spec = torch.stft(
            wave,
            self.n_fft,
            self.hop_length,
            self.win_length,
            window=self.window.to(wave.device),
            center=True,
            pad_mode=pad_mode,
            return_complex=True,
        )
        return spec.real.square() + spec.imag.square()  # no sqrt-then-square round trip

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 1, S) -> (N, 1, n_mels, F) float32, log(mel power + eps)."""
        mel = self.filterbank.to(x.device) @ self.power(x)  # (M, K) @ (N, K, F) -> (N, M, F)
        return torch.log(mel + self.eps)[:, None]

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, win_length={self.win_length}, "
            f"hop_length={self.hop_length}, n_mels={self.n_mels}, f_min={self.f_min}, "
            f"f_max={self.f_max}, eps={self.eps}"
        )


def frontend_for(sample_rate: int) -> LogMel:
    """The default front end at `sample_rate`: 25 ms Hann windows, 10 ms hop, f_min 60 Hz,
    f_max 0.975 * Nyquist, n_fft the next power of two of the window.

    At 16 kHz: win 400, n_fft 512, hop 160, 64 mels, 60-7800 Hz: COLA's windows (Saeed et al.
    2021: 25 ms, hop 10 ms, 64 mel bands) with BYOL-A's band (Niizumi et al. 2021, config.yaml:
    64 mels, 60-7800 Hz, hop 160, but n_fft = window = 1024, 64 ms). Below 16 kHz (FSDD's
    8 kHz: win 200, n_fft 256, hop 80, 60-3900 Hz) 40 mels, the issue's calibration (40 log-mel
    bands from a 256-point STFT): 60-3900 Hz spans 34 Slaney mels (60-7800 Hz: 40), and 64 bands
    over it would leave the lowest ones 2 FFT bins wide (40 bands: at least 3).
    """
    win = round(0.025 * sample_rate)
    return LogMel(
        sample_rate=sample_rate,
        n_fft=1 << (win - 1).bit_length(),
        hop_length=round(0.010 * sample_rate),
        n_mels=64 if sample_rate >= 16000 else 40,
        f_min=60.0,
        f_max=0.975 * sample_rate / 2,
        win_length=win,
    )
