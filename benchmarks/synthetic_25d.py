"""2.5D head vs lifting on held-out synthetic people: MPJPE in mm (CMU subject 03, unseen in training).

Trains :class:`pyramidpose.models.depth25d.Pose25D` (the tiny ViTPose of
``configs/synthetic_tiny.yaml`` plus a location-map depth head) on synthetic crops with their
per-joint depths (subjects 01/02; no flip, so the depths keep their joints), then, on the fixed
synthetic test set (ground-truth boxes), compares two ways to 3D from the same predicted 2D:

- **2.5D**: the head's relative depths, back-projected through the scene camera with the pelvis's
  true depth (the usual "ground-truth root depth" protocol of 2.5D methods);
- **lifting**: the project's default lifter (``pyramidpose/assets/lifter_default``, temporal, trained on
  CMU subjects 01/02 with virtual cameras) fed the predicted COCO-17 2D as a still 27-frame window.

MPJPE is over the 12 body joints both share (shoulders, elbows, wrists, hips, knees, ankles), each
pose relative to its hip midpoint; PA-MPJPE after a similarity (Procrustes) alignment. Usage::

    python benchmarks/synthetic_25d.py --steps 300 --work-dir runs/synthetic_25d
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# COCO index -> H36M index of the 12 shared body joints
COCO_IDX = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
H36M_IDX = [11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
HIPS = (6, 7)  # positions of the hips in the shared list


def _hip_relative(x: np.ndarray) -> np.ndarray:
    return x - x[..., list(HIPS), :].mean(-2, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", default="runs/synthetic_25d")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--depth-weight", type=float, default=0.01, help="L1 depth loss weight (meters)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from pyramidpose.codecs.heatmap import HeatmapCodec
    from pyramidpose.data.synthetic_crops import SyntheticKeypointDataset
    from pyramidpose.evaluation.metrics3d import p_mpjpe
    from pyramidpose.lifting.experiment import load_lifter
    from pyramidpose.models.depth25d import Pose25D, read_depth, reconstruct
    from pyramidpose.models.lifting import normalize_screen
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import build_model, collate, init_weights
    from pyramidpose.training.losses import KeypointMSELoss
    from pyramidpose.training.optim import build_optimizer
    from pyramidpose.training.schedule import LRScheduler, vitpose_schedule
    from pyramidpose.utils.device import autocast_context, choose_precision
    from pyramidpose.utils.jsonio import write_json

    torch.set_num_threads(args.threads)
    t0 = time.time()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cfg = load_config(REPO / "configs" / "synthetic_tiny.yaml", [
        "data.flip_prob=0", f"data.synthetic.train_scenes={args.steps * args.batch_size}", "train.epochs=1",
        f"optim.warmup_iters={max(1, min(50, args.steps // 6))}", *args.overrides])  # fmt: skip
    torch.manual_seed(cfg.train.seed)
    codec = HeatmapCodec.from_config(cfg.model)
    train_ds = SyntheticKeypointDataset(cfg, True, codec, with_depth=True)
    test_ds = SyntheticKeypointDataset(cfg, False, codec)
    base = build_model(cfg)
    init_weights(base, cfg)  # e.g. --set init.backbone_pretrained=runs/pyramid_synthetic/pretrain/model_last.safetensors
    model = Pose25D(base)
    opt = build_optimizer(model, cfg.optim)
    sched = LRScheduler(opt, vitpose_schedule(cfg.optim, args.steps, 1))
    crit = KeypointMSELoss()
    precision = choose_precision(cfg.train.amp, "cpu")  # bf16 only where the CPU has it natively
    g = torch.Generator().manual_seed(cfg.train.seed)
    loader = DataLoader(
        [(i, (cfg.train.seed, 0, i)) for i in range(len(train_ds))], batch_size=args.batch_size, shuffle=True,
        generator=g, collate_fn=lambda items: collate([train_ds[it] for it in items]),
        num_workers=cfg.data.num_workers,
    )  # fmt: skip
    model.train()
    step, losses = 0, []
    bar = tqdm(total=args.steps, desc="2.5D training")
    for batch in loader:
        with autocast_context(precision):
            hm, dm = model(batch["image"])
        w = batch["target_weight"]
        loss_hm = crit(hm.float(), batch["target"], w)
        d = read_depth(dm.float(), batch["target"])
        loss_d = ((d - batch["depth"]).abs() * (w > 0)).sum() / (w > 0).sum().clamp(min=1)
        loss = loss_hm + args.depth_weight * loss_d
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        losses.append((float(loss_hm.detach()), float(loss_d.detach())))
        bar.update(1)
        bar.set_postfix(hm=f"{losses[-1][0]:.2e}", depth_m=f"{losses[-1][1]:.3f}")
        if step >= args.steps:
            break
    bar.close()
    train_s = time.time() - t0

    # test: predicted 2D, 2.5D depths, and the lifter on the same 2D
    lifter, meta = load_lifter(REPO / "pyramidpose" / "assets" / "lifter_default.safetensors")
    rf = int(meta["model"].get("receptive_field", 1)) if meta["model"].get("kind") == "temporal" else 1
    model.eval()
    anns = test_ds.gt["annotations"]
    images = {int(im["id"]): im for im in test_ds.gt["images"]}
    err25, errlift, pa25, palift, d_err, errlift_gt = [], [], [], [], [], []

    def lift(kp2d: np.ndarray, im: dict) -> np.ndarray:
        """The lifter's H36M 3D (mm, shared joints) of one still COCO-17 2D pose (pixels)."""
        x = normalize_screen(np.asarray(kp2d, np.float64), float(im["width"]), float(im["height"]))
        xt = torch.as_tensor(x, dtype=torch.float32)[None, None].expand(1, rf, 17, 2).contiguous()
        y = lifter.forward_window(xt) if rf > 1 else lifter(xt[:, 0])
        return y.reshape(17, 3).numpy().astype(np.float64)[H36M_IDX] * 1000.0

    with torch.no_grad():
        for s in tqdm(range(0, len(anns), 32), desc="2.5D test"):
            batch = collate([test_ds[i] for i in range(s, min(s + 32, len(anns)))])
            with autocast_context(precision):
                hm, dm = model(batch["image"])
            hm, dm = hm.float(), dm.float()
            coords, _ = codec.decode(hm.numpy())
            uv = codec.to_image(coords, batch["center"].numpy(), batch["scale"].numpy())
            depth = read_depth(dm, hm).numpy()
            for j in range(len(uv)):
                a = anns[s + j]
                im = images[int(a["image_id"])]
                K = np.asarray(im["camera_K"], np.float64).reshape(3, 3)
                gt3 = np.asarray(a["joints3d_mm"], np.float64).reshape(17, 3)[H36M_IDX]
                root = np.asarray(a["root_mm"], np.float64)
                p25 = reconstruct(uv[j], depth[j] * 1000.0, K, float(root[2]))[COCO_IDX]
                plift = lift(uv[j], im)
                gt2d = np.asarray(a["keypoints"], np.float64).reshape(17, 3)[:, :2]
                plift_gt2d = lift(gt2d, im) if (np.asarray(a["keypoints"]).reshape(17, 3)[:, 2] > 0).all() else None
                g_rel = _hip_relative(gt3)
                if plift_gt2d is not None:
                    errlift_gt.append(float(np.linalg.norm(_hip_relative(plift_gt2d) - g_rel, axis=-1).mean()))
                for pred, errs, pas in ((p25, err25, pa25), (plift, errlift, palift)):
                    rel = _hip_relative(pred)
                    errs.append(float(np.linalg.norm(rel - g_rel, axis=-1).mean()))
                    pas.append(float(p_mpjpe(rel[None], g_rel[None])))
                d_err.append(float(np.abs(depth[j] * 1000.0 - np.asarray(a["depth_mm"]))[5:].mean()))
    res = {
        "steps": args.steps, "batch_size": args.batch_size, "persons": len(err25),
        "test_scenes": len(images), "train_time_s": train_s, "wall_s": time.time() - t0,
        "final_losses": losses[-1] if losses else None,
        "mpjpe_25d_mm": float(np.mean(err25)), "mpjpe_lifting_mm": float(np.mean(errlift)),
        "pa_mpjpe_25d_mm": float(np.mean(pa25)), "pa_mpjpe_lifting_mm": float(np.mean(palift)),
        "relative_depth_mae_mm": float(np.mean(d_err)),
        "mpjpe_lifting_true_2d_mm": float(np.mean(errlift_gt)) if errlift_gt else None,
        "persons_all_17_labelled": len(errlift_gt),
    }  # fmt: skip
    # bootstrap interval of the paired difference over persons
    rng = np.random.default_rng(0)
    diff = np.asarray(err25) - np.asarray(errlift)
    boots = [float(diff[rng.integers(0, len(diff), len(diff))].mean()) for _ in range(1000)]
    res["mpjpe_diff_ci_mm"] = [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]
    write_json(work / "result.json", res, indent=1)
    print(json.dumps(res, indent=1))
    return 0 if all(math.isfinite(v) for v in (res["mpjpe_25d_mm"], res["mpjpe_lifting_mm"])) else 1


if __name__ == "__main__":
    sys.exit(main())
