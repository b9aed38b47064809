"""Reference scores for eval/detect's cross-check (pycocotools_test.go).

Usage: python reference.py CASES.json > OUT.json

CASES.json is a list of {"gt": path, "dt": path} (COCO instances file and
COCO results file, written by the Go test's generator). For each case this
prints pycocotools 2.0.11's twelve COCOeval stats (iouType "bbox") and
VOC07 AP50 from a small numpy copy of the VOC devkit's voc_eval /
voc_ap(use_07_metric=True), with two documented choices: boxes [x,y,w,h]
become corners (x, y, x+w, y+h), and detections are sorted with a stable
sort (the devkit's np.argsort default leaves ties unspecified). It also
prints numpy's thresholds so the Go side can check them to the bit.
"""
import contextlib
import io
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def coco_stats(gt_path, dt_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]


def voc_ap07(rec, prec):
    # the devkit's voc_ap(rec, prec, use_07_metric=True)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        if np.sum(rec >= t) == 0:
            p = 0
        else:
            p = np.max(prec[rec >= t])
        ap = ap + p / 11.0
    return ap


def voc07_ap50(gt_path, dt_path):
    with open(gt_path) as f:
        gt = json.load(f)
    with open(dt_path) as f:
        dts = json.load(f)
    aps = []
    for cat in sorted(c["id"] for c in gt["categories"]):
        class_recs = {}
        npos = 0
        for a in gt.get("annotations", []):
            if a["category_id"] != cat:
                continue
            x, y, w, h = a["bbox"]
            difficult = bool(a.get("iscrowd", 0)) or bool(a.get("difficult", 0))
            r = class_recs.setdefault(a["image_id"], {"bbox": [], "difficult": [], "det": []})
            r["bbox"].append([x, y, x + w, y + h])
            r["difficult"].append(difficult)
            r["det"].append(False)
            npos += not difficult
        if npos == 0:
            continue
        mine = [d for d in dts if d["category_id"] == cat]
        confidence = np.array([float(d["score"]) for d in mine])
        BB = np.array([[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]] for d in mine], dtype=float).reshape(-1, 4)
        sorted_ind = np.argsort(-confidence, kind="mergesort")
        BB = BB[sorted_ind, :]
        image_ids = [mine[i]["image_id"] for i in sorted_ind]
        nd = len(image_ids)
        tp = np.zeros(nd)
        fp = np.zeros(nd)
        for d in range(nd):
            R = class_recs.get(image_ids[d], {"bbox": [], "difficult": [], "det": []})
            bb = BB[d, :].astype(float)
            ovmax = -np.inf
            BBGT = np.array(R["bbox"], dtype=float).reshape(-1, 4)
            if BBGT.size > 0:
                ixmin = np.maximum(BBGT[:, 0], bb[0])
                iymin = np.maximum(BBGT[:, 1], bb[1])
                ixmax = np.minimum(BBGT[:, 2], bb[2])
                iymax = np.minimum(BBGT[:, 3], bb[3])
                iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
                ih = np.maximum(iymax - iymin + 1.0, 0.0)
                inters = iw * ih
                uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) +
                       (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0) - inters)
                overlaps = inters / uni
                ovmax = np.max(overlaps)
                jmax = np.argmax(overlaps)
            if ovmax > 0.5:
                if not R["difficult"][jmax]:
                    if not R["det"][jmax]:
                        tp[d] = 1.0
                        R["det"][jmax] = 1
                    else:
                        fp[d] = 1.0
            else:
                fp[d] = 1.0
        fp = np.cumsum(fp)
        tp = np.cumsum(tp)
        rec = tp / float(npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(voc_ap07(rec, prec))
    return float(np.mean(aps)) if aps else -1.0


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = {
        "iou_thresholds": np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True).tolist(),
        "recall_thresholds": np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True).tolist(),
        "voc07_thresholds": np.arange(0.0, 1.1, 0.1).tolist(),
        "cases": [{"stats": coco_stats(c["gt"], c["dt"]), "voc07_ap50": voc07_ap50(c["gt"], c["dt"])} for c in cases],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
