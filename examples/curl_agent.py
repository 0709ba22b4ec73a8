"""Adding CURL's contrastive loss to an agent's update (Laskin et al. 2020), with selfsup parts.

The agent here is a toy: a Q-network head on the shared encoder, trained by one-step TD on
random-policy Pong transitions collected offline. What carries over to a real agent is the
pattern in `update`: the RL loss and CURL's loss share the query encoder, are added, and one
optimizer steps both; the key encoder then follows by EMA (`after_step`).

    selfsup collect --env ALE/Pong-v5 --steps 5000 --out frames/pong --frame-size 84
    python examples/curl_agent.py frames/pong
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from selfsup.augment.frame_views import random_shift
from selfsup.data.episodes import read_episodes
from selfsup.encoders import create_encoder
from selfsup.methods import create_method


def batches(eps, batch: int, stack: int, g: torch.Generator):
    """Endless (obs, action, reward, next_obs, done) batches of frame stacks, uint8."""
    pairs = torch.from_numpy(eps.pairs(1))  # (t, t + 1) within one episode
    actions, rewards = torch.from_numpy(eps.actions), torch.from_numpy(eps.rewards)
    while True:
        t, nxt = pairs[torch.randint(len(pairs), (batch,), generator=g)].T
        # (B, stack, H, W): frames stacked as channels (colour: stack x 3 of them)
        obs = torch.from_numpy(eps.stack(t.numpy(), stack)).flatten(1, -3)
        next_obs = torch.from_numpy(eps.stack(nxt.numpy(), stack)).flatten(1, -3)
        done = torch.from_numpy(eps.terminated[nxt.numpy()]).float()
        yield obs, actions[t], rewards[t], next_obs, done


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("episodes", help="a folder from `selfsup collect` (84 x 84 grayscale)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--stack", type=int, default=3)  # CURL stacks 3 frames
    args = p.parse_args()
    eps = read_episodes(args.episodes)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    encoder = create_encoder("nature_cnn", in_chans=args.stack, frame_size=eps.frames.shape[-2:])
    curl = create_method("curl", encoder, gather=False)  # the query encoder is `encoder`
    q_head = nn.Linear(encoder.num_features, int(eps.actions.max()) + 1)
    target_q = nn.Linear(encoder.num_features, q_head.out_features)
    target_q.load_state_dict(q_head.state_dict())
    params = list(curl.parameters()) + list(q_head.parameters())  # key encoder: no grad
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=1e-4)

    def update(obs, action, reward, next_obs, done):
        x = random_shift(obs.float() / 255, pad=4, generator=g)  # DrQ/CURL augmentation
        x_key = random_shift(obs.float() / 255, pad=4, generator=g)
        with torch.no_grad():  # TD target from the key (EMA) encoder and a target head
            nxt = target_q(curl.key_backbone(next_obs.float() / 255)).max(1).values
            target = reward + 0.99 * (1 - done) * nxt
        q = q_head(encoder(x)).gather(1, action[:, None])[:, 0]
        td = nn.functional.smooth_l1_loss(q, target)
        contrastive = curl.loss_on(x, x_key).loss  # CURL: the same batch, two crops
        opt.zero_grad()
        (td + contrastive).backward()
        opt.step()
        curl.after_step(0, 0)  # key encoder <- EMA of the query encoder
        return td.item(), contrastive.item()

    stream = batches(eps, 32, args.stack, g)
    for step in range(1, args.steps + 1):
        td, contrastive = update(*next(stream))
        if step % 50 == 0:
            target_q.load_state_dict(q_head.state_dict())
            print(f"step {step}: TD loss {td:.4f}, CURL loss {contrastive:.3f}")


if __name__ == "__main__":
    main()
