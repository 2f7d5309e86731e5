"""PyTorch reference for scripts/bench-trainer-vs-torch: the built-in
trainer's architecture (token + learned position embeddings, pre-norm
transformer encoder layers with a causal mask, GELU feed-forward, no dropout,
final LayerNorm, linear head over the 264-token byte vocabulary), trained
with AdamW and global-norm clipping at 1.0 on full windows of raw text, the
same shapes as `finetune-lab train` on a .txt dataset. Prints one JSON line.
"""
import json, sys, time
import torch
from torch import nn

def main():
    args = json.loads(sys.argv[1])
    torch.manual_seed(7)
    torch.set_num_threads(args["threads"])
    vocab, d, heads, ff, layers, ctx = 264, args["d_model"], args["n_heads"], args["d_ff"], args["n_layers"], args["context"]
    batch, seq, steps = args["batch"], args["seq"], args["steps"]

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(ctx, d)
            layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.out = nn.Linear(d, vocab)

        def forward(self, x):
            t = x.shape[1]
            h = self.tok(x) + self.pos(torch.arange(t).unsqueeze(0))
            mask = nn.Transformer.generate_square_subsequent_mask(t)
            return self.out(self.norm(self.enc(h, mask=mask, is_causal=True)))

    model = LM()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    text = open(args["data"], "rb").read()
    data = torch.tensor(list(text), dtype=torch.long)
    windows = data[: (len(data) // (seq + 1)) * (seq + 1)].view(-1, seq + 1)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, windows.shape[0], (batch,))
        w = windows[idx]
        logits = model(w[:, :-1])
        loss = loss_fn(logits.reshape(-1, vocab), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - started
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "params": params,
                      "tokens_per_second": batch * seq * steps / seconds,
                      "steps_per_second": steps / seconds, "final_loss": loss.item()}))

main()
