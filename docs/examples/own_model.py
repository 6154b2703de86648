"""Record the training of a model of your own with ``llmb.record``: here a one-block transformer
built from PyTorch's ``nn.MultiheadAttention``, neither LLMBreaker's MicroGPT nor nanoGPT's GPT,
so a *view* tells the recorder how to see inside it.

    python docs/examples/own_model.py [--steps 600] [--tracking-uri sqlite:///mlflow.db]
    llmb dash                                  # then pick the run "own-model"
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

import llmb_mlflow as llmb

CONTEXT, WIDTH, HEADS = 64, 64, 4


class TinyTransformer(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, WIDTH)
        self.position = nn.Parameter(torch.zeros(CONTEXT, WIDTH))
        self.attn = nn.MultiheadAttention(WIDTH, HEADS, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(WIDTH), nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(),
                                 nn.Linear(4 * WIDTH, WIDTH))
        self.out = nn.Linear(WIDTH, vocab_size)

    def forward(self, ids, need_weights=False):
        x = self.embed(ids) + self.position[:ids.shape[1]]
        mask = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool, device=ids.device).triu(1)
        mixed, weights = self.attn(x, x, x, attn_mask=mask, need_weights=need_weights, average_attn_weights=False)
        x = x + mixed
        x = x + self.mlp(x)
        return self.out(x), weights


class TinyTransformerView:
    """What the recorder asks of a model: next-token logits, attention (layers, heads, T, T) and
    the token embedding (either may be None: that panel then says the model shows none)."""

    block_size = CONTEXT

    def __init__(self, model):
        self.model = model

    def logits(self, ids):
        return self.model(ids)[0]

    def attention(self, ids):
        return self.model(ids, need_weights=True)[1]  # (1, heads, T, T): one layer

    def embedding(self):
        return self.model.embed.weight


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()

    from llmb_mlflow.training.corpus import load_corpus

    text = load_corpus("shakespeare").text  # or your own: open("my.txt").read()
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text[:200_000]])
    train, val = data[:180_000], data[180_000:]
    torch.manual_seed(0)
    model = TinyTransformer(len(chars))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def batch(split):
        starts = torch.randint(len(split) - CONTEXT - 1, (16,))
        return (torch.stack([split[s:s + CONTEXT] for s in starts]),
                torch.stack([split[s + 1:s + CONTEXT + 1] for s in starts]))

    def loss_on(x, y):
        return F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten())

    with llmb.record(model, tokenizer="".join(chars), probe_text=text[180_000:180_200], view=TinyTransformerView(model),
                     experiment="mine", run_name="own-model", params={"steps": args.steps, "lr": 3e-3},
                     tracking_uri=args.tracking_uri) as rec:
        for step in range(args.steps + 1):
            if step % 100 == 0 or step == args.steps:
                with torch.no_grad():
                    val_loss = loss_on(*batch(val))
                print(f"step {step}: val loss {val_loss:.3f}, sample: {rec.snapshot(step, val_loss=val_loss)[:40]!r}")
            if step == args.steps or rec.stop_requested:
                break
            loss = loss_on(*batch(train))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rec.log(step + 1, train_loss=loss)
    print(f"recorded run {rec.run_id}")


if __name__ == "__main__":
    main()
