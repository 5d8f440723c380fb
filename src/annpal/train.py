"""Training one network: the paper's recipe in a device-resident loop (docs/method.md §2).

Recipe (paper, "Neural network model"; authors' ``2b_train_model.py`` and ``5_train_null_model.py``):
binary cross-entropy, ``Adam(lr, weight_decay)``, and every batch

* labels ``y ← clamp(y − ε, 0, 1)``, ``ε ~ N(0, label_noise)`` per sample;
* inputs ``x ← x − ξ``, ``ξ ~ N(0, input_noise)`` per element (before the network's input dropout).

Quantitative traits (``--trait-type quantitative`` at PREPARE; the network's ``output="linear"``): the
trait is standardised with the training rows' mean and SD, the loss is the mean squared error, the label
noise is applied the same way but not clamped (a standardised trait has no [0, 1] range), the training
rows are used once each (no classes to balance), and validation reports R² instead of AUC.

The training rows are balanced once per seed (:func:`annpal.dataset.balanced_training_index`: every case
twice, a seeded half of the controls) and that index is reshuffled every epoch. After each epoch the
whole validation set is scored in eval mode without noise: validation loss and AUC.

Fast by design: no ``DataLoader``; the int8 genotype matrix of the training rows is moved to the device
once, batches are gathered by an index tensor and turned into float32 with their noise on the device; the
first (and only large) matrix product may run under bf16 autocast on CUDA; losses are summed on the
device and read back once per epoch.

Deviations from the authors' scripts (bugs or shortcuts we do not copy):

* their "test loss" is one random batch of 64 validation samples per step, averaged over steps; we score
  the whole validation set once per epoch;
* their null models shuffle one label vector in place across seeds, so null model *k*'s labels depend on
  all previous seeds; ours draw a fresh permutation from ``permute_seed`` alone;
* they never balance the classes in code (the paper does); we do, with the model seed.

Randomness: three independent streams are spawned from ``seed`` with :class:`numpy.random.SeedSequence`:
the torch default generator (weight initialisation and the hidden-layer dropouts; it is forked with
:func:`torch.random.fork_rng` so the caller's global state is left untouched), a dedicated
:class:`torch.Generator` on the device for label noise, input noise and the input-dropout mask (applied
by the loop with the same law as the model's ``Dropout``, see ``train_model``), and a numpy
:class:`~numpy.random.Generator` for the per-epoch shuffles. All three states are saved in checkpoints,
so a resumed run continues exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
import torch
from torch.nn import functional as F

from annpal.collapse import (
    COLLAPSE_SD_TOL,
    collapse_risk,
    collapse_summary,
    dead_fraction,
    output_sd,
    score_with_dead_units,
)
from annpal.dataset import BALANCE_RULES, balance_summary, balanced_training_index
from annpal.device import resolve_device, torch_threads
from annpal.errors import InputError
from annpal.input_dropout import KERNEL_CHOICES, BatchKernel, make_input_kernel, resolve_input_kernel
from annpal.model import FIRST_LINEAR, OUTPUT_OF_TRAIT, AnnClassifier, ModelConfig
from annpal.prepared import PreparedDataset

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auc", "val_r2", "val_output_sd", "val_dead_fraction",
                   "seconds"]
#: Which weights a run returns (``--keep``): the last epoch's (paper) or the lowest validation loss's.
KEEP_CHOICES = ("last", "best_val_loss")
#: Rows of the validation matrix scored at once (bounds the float32 copy on the device).
VAL_CHUNK = 256


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (docs/method.md §2; paper defaults) and how to run it.

    Parameters
    ----------
    epochs
        Number of passes over the balanced training index (paper: 1000).
    batch_size
        Samples per optimiser step (paper: 256; the last batch of an epoch may be smaller).
    lr, weight_decay
        Adam learning rate and (L2, Adam-style) weight decay (paper: 1e-5, 1e-3).
    label_noise
        Standard deviation of ε in ``y ← clamp(y − ε, 0, 1)`` (paper: 0.1).
    input_noise
        Standard deviation of ξ in ``x ← x − ξ`` (paper: 0.1).
    checkpoint_every
        Write a checkpoint every this many epochs (and after the last one) when a checkpoint folder is
        given.
    bf16
        Run the first linear layer (nearly all the work) under bf16 autocast; CUDA only, ignored with a
        warning on CPU. The rest of the network and the loss stay in float32.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``.
    threads
        CPU threads for torch (``None``: leave torch's setting). Restored when training ends.
    input_dropout_kernel
        How a batch reaches the first layer (:mod:`annpal.input_dropout`): ``dense`` (the reference: the
        full noisy, masked batch), ``sparse`` (only the surviving inputs; the same law) or ``auto``
        (sparse when the input dropout is at least 0.9).
    balance
        Class balancing of the training rows (:func:`annpal.dataset.balanced_training_index`): ``auto``
        (the paper's rule when it gives 40–60 % cases, else ``equal``), ``paper``, ``equal`` or ``none``.
    keep
        ``last`` (paper) returns the last epoch's weights; ``best_val_loss`` those of the epoch with the
        lowest validation loss (early stopping in hindsight; the paper's discussion names it).
    """

    epochs: int = 1000
    batch_size: int = 256
    lr: float = 1e-5
    weight_decay: float = 1e-3
    label_noise: float = 0.1
    input_noise: float = 0.1
    checkpoint_every: int = 50
    bf16: bool = False
    device: str = "auto"
    threads: int | None = None
    input_dropout_kernel: str = "auto"
    balance: str = "auto"
    keep: str = "last"

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.lr > 0, "--lr must be positive"),
            (self.weight_decay >= 0, "--weight-decay must be 0 or more"),
            (self.label_noise >= 0, "--label-noise must be 0 or more"),
            (self.input_noise >= 0, "--input-noise must be 0 or more"),
            (self.checkpoint_every >= 1, "--checkpoint-every must be at least 1"),
            (self.threads is None or self.threads >= 1, "--threads must be at least 1"),
            (self.input_dropout_kernel in KERNEL_CHOICES,
             f"--input-dropout-kernel must be one of {', '.join(KERNEL_CHOICES)}"),
            (self.balance in BALANCE_RULES, f"--balance must be one of {', '.join(BALANCE_RULES)}"),
            (self.keep in KEEP_CHOICES, f"--keep must be one of {', '.join(KEEP_CHOICES)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"{message}; fix the training options")

    def recipe(self) -> dict[str, Any]:
        """The options that change the trained weights (used to refuse resuming a different run)."""
        # keep: a best_val_loss checkpoint carries the best weights, a last one does not
        return {k: getattr(self, k) for k in ("batch_size", "lr", "weight_decay", "label_noise",
                                              "input_noise", "bf16", "balance", "keep")}


@dataclass
class TrainResult:
    """A trained model and what is known about its training.

    Attributes
    ----------
    model
        The network on the CPU, in eval mode.
    history
        One row per epoch (``annpal.results`` artifact ``history``; epoch counted from 1).
    meta
        Reproducible facts stored in ``model.pt``: ``kind`` (``"real"``/``"null"``), ``seed``,
        ``permute_seed``, ``permutation`` (null: the permutation of the training rows' labels, in the order of ``train_rows``; real:
        ``None``), ``train_rows`` and ``val_rows`` (row indices into the prepared dataset), ``case_rows``,
        ``n_train``, ``n_train_balanced``, ``balance`` (rule asked and used, class counts and case
        shares before and after balancing), ``n_val``, ``n_snps``, ``model_config``, ``train_config``, and
        what :func:`_keep_weights` returns: ``keep``, ``kept_epoch``, ``collapsed`` (the kept weights give
        a constant validation output), ``collapse_epoch``, ``training_collapsed`` and
        ``collapse_sd_tolerance``.

        ``case_rows`` are the rows the attribution step averages over (docs/method.md §3): for a real model
        every case (label 1) of the dataset, training and validation; for a null model the training
        rows whose *permuted* label is 1 — as the authors' ``6_get_ig_sm_null_mas.py`` does (it reads the
        null training matrix with its shuffled labels); validation rows keep their true labels in a null
        model, so they are not "cases under permuted labels" and are left out.
    info
        Run facts that vary between runs (device, threads, timings, resume point) for ``train.json``.
    """

    model: AnnClassifier
    history: pd.DataFrame
    meta: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties counted one half.

    ``AUC = (R₁ − n₁(n₁+1)/2) / (n₁ n₀)`` with ``R₁`` the sum of the (average, tie-aware) ranks of the
    positives' scores. NaN when either class is absent.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n1 = int(labels.sum())
    n0 = labels.size - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = scipy.stats.rankdata(scores)  # average ranks: a tie between a case and a control counts 1/2
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def r_squared(values: np.ndarray, predictions: np.ndarray) -> float:
    """Coefficient of determination of ``predictions`` on held-out ``values``: ``1 − SS_res / SS_tot``.

    ``SS_res = Σ (y − ŷ)²`` and ``SS_tot = Σ (y − ȳ)²`` around the held-out mean, so a constant
    prediction at that mean scores 0 and a worse one below 0 (it is not the square of a correlation).
    Unchanged when ``values`` and ``predictions`` undergo the same affine map (training works on the
    standardised trait). NaN without values or when they do not vary.
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    f = np.asarray(predictions, dtype=np.float64).ravel()
    ss_tot = float(np.sum((y - y.mean()) ** 2)) if y.size else 0.0
    if ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((y - f) ** 2)) / ss_tot


def permute_training_labels(labels: np.ndarray, *, permute_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A null model's labels: a seeded permutation of the training rows' labels (docs/method.md §2).

    Returns ``(permutation, permuted)`` with ``permuted = labels[permutation]``.
    """
    permutation = np.random.default_rng(permute_seed).permutation(len(labels))
    return permutation, np.asarray(labels)[permutation]


def _stream_seeds(seed: int) -> tuple[int, int, np.random.SeedSequence]:
    """Independent seeds for torch's default generator, the noise generator and the shuffles."""
    init_ss, noise_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(3)
    as_int = lambda ss: int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))  # noqa: E731
    return as_int(init_ss), as_int(noise_ss), shuffle_ss


def _forward(model: AnnClassifier, x: torch.Tensor, *, bf16: bool, input_dropped: bool = False
             ) -> torch.Tensor:
    """``model(x)`` flattened.

    ``input_dropped``: the caller has already applied the input dropout (training), so the model's own
    input ``Dropout`` layer is skipped. With ``bf16`` only the first linear layer runs under autocast: it
    holds all but ``H1·H2 + 2·H2 + H1 + 1`` parameters and nearly all the FLOPs, and keeping the small
    tail and the sigmoid in float32 avoids bf16 probabilities rounding to exactly 0 or 1.
    """
    if not bf16:
        return (model.layers[FIRST_LINEAR:](x) if input_dropped else model(x)).flatten()
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
        z = model.layers[FIRST_LINEAR if input_dropped else 0: FIRST_LINEAR + 1](x)
    return model.forward_from_preactivation(z.float()).flatten()


def dataset_digest(dataset: PreparedDataset, *, chunk_rows: int = 256) -> str:
    """SHA-256 of the genotype matrix, labels and splits (what training sees), streamed in row chunks.

    Part of the checkpoint fingerprint, so a checkpoint is never resumed on other data; about a second
    per GB of genotypes, negligible beside training.
    """
    h = hashlib.sha256()
    h.update(repr(dataset.genotypes.shape).encode())
    for start in range(0, dataset.n_samples, chunk_rows):
        h.update(np.ascontiguousarray(dataset.genotypes[start:start + chunk_rows]).tobytes())
    h.update(np.ascontiguousarray(dataset.labels).tobytes())
    h.update("\n".join(dataset.samples["split"].astype(str)).encode())
    return h.hexdigest()


def covariate_digest(covariates: np.ndarray | None) -> str | None:
    """SHA-256 of the covariate matrix (float64, C order) the network is trained with; ``None`` without."""
    if covariates is None:
        return None
    values = np.ascontiguousarray(covariates, dtype=np.float64)
    return hashlib.sha256(repr(values.shape).encode() + values.tobytes()).hexdigest()


def _fingerprint(*, seed: int, null: bool, permute_seed: int | None, model_config: ModelConfig,
                 train_config: TrainConfig, dataset: PreparedDataset, device: torch.device,
                 covariates: np.ndarray | None = None) -> str:
    return json.dumps({
        "seed": seed, "null": null, "permute_seed": permute_seed,
        "model": asdict(model_config), "recipe": train_config.recipe(),
        "shape": [dataset.n_samples, dataset.n_snps], "n_train": int(dataset.train_mask.sum()),
        "data": dataset_digest(dataset), "device_type": device.type,
        "covariates": covariate_digest(covariates),
        # the kernels draw different random numbers: a checkpoint of one never continues the other
        "input_kernel": resolve_input_kernel(train_config.input_dropout_kernel, model_config.input_dropout,
                                             device_type=device.type),
    }, sort_keys=True, default=str)


def checkpoint_subdir(root: str | os.PathLike[str], **fingerprint_inputs: Any) -> Path:
    """A checkpoint folder under ``root`` named by the run's fingerprint (seed, recipe, architecture,
    data digest, device type).

    This is what the pipeline uses: a TRAIN task that is killed and retried (new work folder) or
    re-run with ``-resume`` finds its own checkpoint under a stable root, and runs that differ in any
    input can never pick up each other's checkpoints. Keyword arguments are those of the fingerprint:
    ``seed, null, permute_seed, model_config, train_config, dataset, device`` and ``covariates``.
    """
    digest = hashlib.sha256(_fingerprint(**fingerprint_inputs).encode()).hexdigest()[:20]
    return Path(root) / digest


def _save_checkpoint(directory: Path, state: dict[str, Any]) -> None:
    """Write the checkpoint to a temporary file in the same folder, then rename (atomic)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / CHECKPOINT_NAME
    tmp = directory / f".{CHECKPOINT_NAME}.tmp-{os.getpid()}"
    try:
        torch.save(state, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _load_checkpoint(directory: Path, fingerprint: str) -> dict[str, Any] | None:
    path = directory / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated file cannot come from our atomic writer, but say so clearly
        raise InputError(f"{path}: unreadable checkpoint ({exc}); delete it or use an empty "
                         "--checkpoint-dir") from exc
    if state.get("fingerprint") != fingerprint:
        raise InputError(f"{path}: checkpoint of a different run (seed, recipe, architecture, data or "
                         "device type differ); use an empty --checkpoint-dir for this run")
    return state


@dataclass
class _Rows:
    """Which rows a run trains on and validates on, and with which labels (see :func:`_select_rows`)."""

    train_rows: np.ndarray
    val_rows: np.ndarray
    train_labels: np.ndarray
    permutation: np.ndarray | None
    balanced: np.ndarray
    case_rows: np.ndarray
    balance: dict[str, Any]
    #: quantitative trait: the training rows' mean and SD, which standardise every label; (0, 1) binary
    scale: tuple[float, float] = (0.0, 1.0)


def _select_rows(dataset: PreparedDataset, *, seed: int, null: bool, permute_seed: int | None,
                 balance: str = "auto") -> _Rows:
    """Training and validation rows, the (permuted, for a null model) training labels and the balanced
    index; input errors when a split is empty or a class is missing.

    A quantitative trait (:func:`_quantitative_rows`) has no classes: no balancing, and every sample is
    attributed."""
    labels = dataset.labels if dataset.quantitative else dataset.labels.astype(np.int64)
    train_rows = np.flatnonzero(dataset.train_mask)
    val_rows = np.flatnonzero(dataset.val_mask)
    if train_rows.size == 0:
        raise InputError(f"{dataset.path or 'dataset'}: no samples with split 'train'; re-run annpal-prepare")
    train_labels = labels[train_rows]
    permutation = None
    if null:
        permutation, train_labels = permute_training_labels(train_labels, permute_seed=permute_seed)
    if dataset.quantitative:
        return _quantitative_rows(dataset, train_rows, val_rows, train_labels, permutation, null=null,
                                  balance=balance)
    if train_labels.min() == train_labels.max():
        raise InputError(f"{dataset.path or 'dataset'}: the training rows hold only one class; both cases "
                         "and controls are needed")
    if val_rows.size == 0:
        log.warning("no validation samples: validation loss and AUC will be NaN")
    balanced = np.asarray(balanced_training_index(train_labels, seed=seed, rule=balance), dtype=np.int64)
    case_rows = np.flatnonzero(labels == 1) if not null else train_rows[train_labels == 1]
    return _Rows(train_rows, val_rows, train_labels, permutation, balanced, case_rows,
                 balance_summary(train_labels, balanced, rule=balance))


def _quantitative_rows(dataset: PreparedDataset, train_rows: np.ndarray, val_rows: np.ndarray,
                       train_labels: np.ndarray, permutation: np.ndarray | None, *, null: bool, balance: str
                       ) -> _Rows:
    """:class:`_Rows` of a quantitative trait: every training row once; attribution rows are every sample
    (real model) or every training row (null model: its permuted values); the training rows' mean and SD
    to standardise the trait."""
    if balance not in ("auto", "none"):
        raise InputError(f"--balance {balance}: class balancing needs a case/control trait; use --balance auto "
                         "or none with a quantitative trait")
    sd = float(np.std(train_labels))
    if not sd > 0:
        raise InputError(f"{dataset.path or 'dataset'}: the quantitative trait is constant over the training rows")
    balanced = np.arange(train_rows.size, dtype=np.int64)
    attributed = train_rows if null else np.arange(dataset.n_samples, dtype=np.int64)
    summary = {"rule": balance, "rule_used": "none", "trait_type": "quantitative", "n_train": int(train_rows.size)}
    return _Rows(train_rows, val_rows, train_labels, permutation, balanced, attributed, summary,
                 scale=(float(np.mean(train_labels)), sd))


def _run_meta(rows: _Rows, *, seed: int, null: bool, permute_seed: int | None, n_snps: int,
              model_config: ModelConfig, train_config: TrainConfig) -> dict[str, Any]:
    """The reproducible facts stored in ``model.pt`` (see :func:`train_model`, Returns)."""
    return {
        "kind": "null" if null else "real",
        "seed": int(seed),
        "permute_seed": None if permute_seed is None else int(permute_seed),
        "permutation": None if rows.permutation is None else rows.permutation.tolist(),
        "train_rows": rows.train_rows.tolist(),
        "val_rows": rows.val_rows.tolist(),
        "case_rows": rows.case_rows.tolist(),
        "trait_type": "quantitative" if model_config.output == "linear" else "binary",
        "trait_scaling": None if model_config.output != "linear" else {"mean": rows.scale[0], "sd": rows.scale[1]},
        "n_train": int(rows.train_rows.size),
        "n_train_balanced": int(rows.balanced.size),
        "balance": rows.balance,
        "n_val": int(rows.val_rows.size),
        "n_snps": int(n_snps),
        "model_config": asdict(model_config),
        "train_config": asdict(train_config),
    }


@dataclass
class _DeviceData:
    """The run's matrices on the device: int8 genotypes (float32 copies exist one batch at a time)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    y_val_np: np.ndarray
    balanced: torch.Tensor
    #: raw covariates of the training and validation rows (float32), ``None`` without covariates
    c_train: torch.Tensor | None = None
    c_val: torch.Tensor | None = None


def _to_device(dataset: PreparedDataset, rows: _Rows, device: torch.device,
               covariates: np.ndarray | None = None) -> _DeviceData:
    mean, sd = rows.scale  # a quantitative trait is standardised with the training rows' mean and SD
    labels = (dataset.labels - mean) / sd if dataset.quantitative else dataset.labels.astype(np.int64)
    cov = None if covariates is None else np.asarray(covariates, dtype=np.float32)
    return _DeviceData(
        x_train=torch.from_numpy(np.ascontiguousarray(dataset.genotypes[rows.train_rows])).to(device),
        y_train=torch.from_numpy(((rows.train_labels - mean) / sd).astype(np.float32)).to(device),
        x_val=torch.from_numpy(np.ascontiguousarray(dataset.genotypes[rows.val_rows])).to(device),
        y_val=torch.from_numpy(labels[rows.val_rows].astype(np.float32)).to(device),
        y_val_np=labels[rows.val_rows],
        balanced=torch.from_numpy(rows.balanced).to(device),
        c_train=None if cov is None else torch.from_numpy(cov[rows.train_rows]).to(device),
        c_val=None if cov is None else torch.from_numpy(cov[rows.val_rows]).to(device),
    )


@dataclass
class _Run:
    """What changes while training: the network, its optimiser, the random streams and the history,
    and the batch kernel that feeds the first layer.

    Everything but the kernel (which holds no state of its own) is saved in a checkpoint
    (:func:`_checkpoint_state`) and put back by :func:`_restore`, so a resumed run continues exactly.
    """

    model: AnnClassifier
    kernel: BatchKernel
    optimizer: torch.optim.Optimizer
    noise_gen: torch.Generator
    shuffle_rng: np.random.Generator
    device: torch.device
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0
    #: ``--keep best_val_loss``: a copy of the weights of the lowest validation loss so far, its epoch
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int | None = None


def _setup(model_config: ModelConfig, train_config: TrainConfig, data: _DeviceData, *, seed: int,
           bf16: bool) -> _Run:
    """A fresh network, its batch kernel, optimiser and random streams for ``seed``.

    Seeds torch's default generator: call inside :func:`torch.random.fork_rng`.
    """
    device = data.x_train.device
    init_seed, noise_seed, shuffle_ss = _stream_seeds(seed)
    torch.manual_seed(init_seed)
    model = AnnClassifier(model_config).to(device)
    if data.c_train is not None:
        # training rows' statistics (float64 for the SD); _check_options refused constant columns
        c = data.c_train.double()
        model.set_covariate_scaling(c.mean(0).float(), c.std(0, correction=0).float())
    kernel = make_input_kernel(train_config.input_dropout_kernel, data.x_train, model,
                               max_batch=min(train_config.batch_size, data.balanced.numel()),
                               input_noise=train_config.input_noise, bf16=bf16)
    # Adam over every weight; the kernel decides how (torch's fused Adam, or W1's step fused with its
    # sparse gradient)
    optimizer = kernel.optimizer(model, lr=train_config.lr, weight_decay=train_config.weight_decay)
    noise_gen = torch.Generator(device=device)
    noise_gen.manual_seed(noise_seed)
    return _Run(model=model, kernel=kernel, optimizer=optimizer, noise_gen=noise_gen,
                shuffle_rng=np.random.default_rng(shuffle_ss), device=device)


def _checkpoint_state(run: _Run, *, fingerprint: str, epoch: int) -> dict[str, Any]:
    """Everything :func:`_restore` needs to continue after ``epoch`` exactly as without a break."""
    return {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "torch_cpu_rng": torch.get_rng_state(),
        "torch_cuda_rng": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
        "noise_rng": run.noise_gen.get_state(),
        "shuffle_rng": json.dumps(run.shuffle_rng.bit_generator.state),
        "history": run.history,
        "best_state": run.best_state,
        "best_epoch": run.best_epoch,
    }


def _restore(run: _Run, ckpt_dir: Path, *, fingerprint: str, epochs: int) -> None:
    """Continue from ``ckpt_dir``'s checkpoint of this run, if there is one."""
    state = _load_checkpoint(ckpt_dir, fingerprint)
    if state is None:
        return
    start_epoch = int(state["epoch"])
    if start_epoch > epochs:
        raise InputError(f"{ckpt_dir / CHECKPOINT_NAME}: checkpoint is at epoch {start_epoch}, past "
                         f"--epochs {epochs}; raise --epochs or use an empty --checkpoint-dir")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_cpu_rng"])
    if run.device.type == "cuda":
        torch.cuda.set_rng_state(state["torch_cuda_rng"], run.device)
    run.noise_gen.set_state(state["noise_rng"])
    run.shuffle_rng.bit_generator.state = json.loads(state["shuffle_rng"])
    run.history = [dict(row) for row in state["history"]]
    run.best_state, run.best_epoch = state.get("best_state"), state.get("best_epoch")
    run.start_epoch = start_epoch
    log.info("resuming from %s at epoch %d", ckpt_dir / CHECKPOINT_NAME, start_epoch)


def _train_epoch(run: _Run, data: _DeviceData, train_config: TrainConfig) -> float:
    """One pass over a fresh shuffle of the balanced index; the mean of the batches' losses."""
    order = data.balanced[torch.from_numpy(run.shuffle_rng.permutation(data.balanced.numel())).to(run.device)]
    run.model.train()
    loss_sum = torch.zeros((), device=run.device)
    n_batches = 0
    batches = list(order.split(train_config.batch_size))
    with run.kernel.steps():
        for i, idx in enumerate(batches):
            following = batches[i + 1] if i + 1 < len(batches) else None
            loss_sum += _train_step(run, data, idx, train_config, following=following)
            n_batches += 1
    # Like the authors: training loss = mean over the epoch's batches of the batch mean loss.
    return float(loss_sum.item()) / n_batches


def _train_step(run: _Run, data: _DeviceData, idx: torch.Tensor, train_config: TrainConfig, *,
                following: torch.Tensor | None = None) -> torch.Tensor:
    """One optimiser step on the training rows ``idx`` (model in train mode); the batch loss, detached.

    ``following``: the rows of the epoch's next batch, announced to the kernel before the optimiser step
    (:meth:`~annpal.input_dropout.BatchKernel.prefetch`; the fused kernel draws its survivors then).
    """
    model, kernel, generator = run.model, run.kernel, run.noise_gen
    # Authors' order of draws: label noise, then input noise.
    y = data.y_train.index_select(0, idx)
    linear = model.config.output == "linear"
    if train_config.label_noise > 0:
        eps = torch.randn(idx.numel(), generator=generator, device=run.device)
        y = y - eps.mul_(train_config.label_noise)
        if not linear:  # a quantitative trait (standardised) has no [0, 1] range to clamp to
            y = y.clamp_(0.0, 1.0)
    z = kernel.preactivation(model, idx, generator)
    c = None if data.c_train is None else data.c_train.index_select(0, idx)
    loss = output_loss(model.forward_from_preactivation(z, c).flatten(), y, linear=linear)
    run.optimizer.zero_grad(set_to_none=True)
    kernel.backward(model, loss)
    if following is not None:
        kernel.prefetch(model, following, generator)
    run.optimizer.step()
    return loss.detach()


def output_loss(output: torch.Tensor, target: torch.Tensor, *, linear: bool) -> torch.Tensor:
    """The training loss: binary cross-entropy of the case probability (paper), or the mean squared
    error of a linear output (quantitative trait, standardised)."""
    return F.mse_loss(output, target) if linear else F.binary_cross_entropy(output, target)


def _validate(model: AnnClassifier, data: _DeviceData, *, bf16: bool) -> dict[str, float]:
    """The whole validation set in eval mode without noise: loss, AUC (binary) or R² (quantitative), the
    SD of the outputs and the share of first-hidden-layer units never positive on it
    (:mod:`annpal.collapse`); NaN without one."""
    if data.x_val.shape[0] == 0:
        return {"val_loss": math.nan, "val_auc": math.nan, "val_r2": math.nan, "val_output_sd": math.nan,
                "val_dead_fraction": math.nan}
    model.eval()
    linear = model.config.output == "linear"
    probs, alive = score_with_dead_units(model, data.x_val, chunk=VAL_CHUNK, bf16=bf16, covariates=data.c_val)
    scores = probs.cpu().numpy()
    return {"val_loss": float(output_loss(probs, data.y_val, linear=linear).item()),
            "val_auc": math.nan if linear else roc_auc(data.y_val_np, scores),
            "val_r2": r_squared(data.y_val_np, scores) if linear else math.nan,
            "val_output_sd": output_sd(probs), "val_dead_fraction": dead_fraction(alive)}


def _remember_best(run: _Run, epoch: int, val_loss: float) -> None:
    """``--keep best_val_loss``: copy the weights when ``val_loss`` is the lowest so far (first wins ties)."""
    best = math.inf if run.best_epoch is None else run.history[run.best_epoch - 1]["val_loss"]
    if val_loss < best:
        run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        run.best_epoch = epoch


def _fit(run: _Run, data: _DeviceData, train_config: TrainConfig, *, bf16: bool,
         fingerprint: str, ckpt_dir: Path | None,
         on_epoch_end: Callable[[int, dict[str, float]], None] | None) -> None:
    """Epochs ``run.start_epoch + 1 … epochs``: train, validate, log, checkpoint, call back."""
    log_every = max(1, train_config.epochs // 20)
    quality = "r2" if run.model.config.output == "linear" else "auc"
    for epoch in range(run.start_epoch + 1, train_config.epochs + 1):
        t0 = time.perf_counter()
        train_loss = _train_epoch(run, data, train_config)
        row = {"epoch": epoch, "train_loss": train_loss, **_validate(run.model, data, bf16=bf16),
               "seconds": time.perf_counter() - t0}
        run.history.append(row)
        if train_config.keep == "best_val_loss":
            _remember_best(run, epoch, row["val_loss"])
        if epoch % log_every == 0 or epoch == train_config.epochs:
            log.info("epoch %d/%d train_loss %.4f val_loss %.4f val_%s %.4f val_sd %.3g dead %.2f (%.2f s)",
                     epoch, train_config.epochs, train_loss, row["val_loss"], quality,
                     row["val_r2" if quality == "r2" else "val_auc"],
                     row["val_output_sd"], row["val_dead_fraction"], row["seconds"])
        if ckpt_dir is not None and (epoch % train_config.checkpoint_every == 0 or epoch == train_config.epochs):
            _save_checkpoint(ckpt_dir, _checkpoint_state(run, fingerprint=fingerprint, epoch=epoch))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)


def _keep_weights(run: _Run, keep: str) -> dict[str, Any]:
    """Put the weights ``keep`` asks for into ``run.model`` (after the kernel's ``finish``); return what
    was kept and whether those weights, and the training run, collapsed (:mod:`annpal.collapse`).

    ``collapsed`` is about the kept weights (what attribution sees); ``collapse_epoch`` is the epoch from
    which the training run's validation output stayed constant (``None`` when it did not end so).
    """
    kept = len(run.history)
    if keep == "best_val_loss":
        if run.best_state is None:
            log.warning("--keep best_val_loss: no validation loss to choose by; keeping the last epoch")
        else:
            run.model.load_state_dict(run.best_state)
            kept = run.best_epoch
    sd = [row["val_output_sd"] for row in run.history]
    training = collapse_summary(sd)
    collapsed = bool(kept and sd[kept - 1] < COLLAPSE_SD_TOL)
    if collapsed:
        log.warning("the network collapsed to a constant output (validation output SD < %g from epoch %s); "
                    "its attributions carry no information: see docs/training.md", COLLAPSE_SD_TOL,
                    training["collapse_epoch"])
    return {"keep": keep, "kept_epoch": kept, "collapsed": collapsed,
            "collapse_epoch": training["collapse_epoch"], "training_collapsed": training["collapsed"],
            "collapse_sd_tolerance": COLLAPSE_SD_TOL}


def _check_covariates(dataset: PreparedDataset, model_config: ModelConfig, covariates: np.ndarray | None
                      ) -> np.ndarray | None:
    """The covariate matrix as float64 ``N × C`` after checking it against the model and the data.

    Raises
    ------
    InputError
        Covariates given to a model without any or missing for one that names some, a wrong shape,
        non-finite values, or a column constant over the training rows (it cannot be standardised).
    """
    names = model_config.covariates
    if covariates is None:
        if names:
            raise InputError(f"the model names covariates ({', '.join(names)}) but none were given; "
                             "pass their values or build the model without covariates")
        return None
    values = np.asarray(covariates, dtype=np.float64)
    if values.shape != (dataset.n_samples, len(names)):
        raise InputError(f"covariates have shape {values.shape}, expected ({dataset.n_samples}, {len(names)}) "
                         "(one row per dataset sample, one column per covariate the model names)")
    if not np.isfinite(values).all():
        raise InputError("covariates hold NaN or infinite values; impute or drop them")
    constant = [n for n, sd in zip(names, values[dataset.train_mask].std(axis=0), strict=True) if not sd > 0]
    if constant:
        raise InputError(f"covariate(s) {', '.join(constant)} constant over the training rows; drop them")
    return values


def _check_options(dataset: PreparedDataset, model_config: ModelConfig, train_config: TrainConfig, *,
                   seed: int, null: bool, permute_seed: int | None) -> tuple[int | None, torch.device, bool]:
    """Check the options of :func:`train_model` against each other and the data; warn about bf16 off CUDA
    and about step sizes in the collapse region; return ``(permute_seed, device, bf16)``."""
    if model_config.n_snps != dataset.n_snps:
        raise InputError(f"model has {model_config.n_snps} inputs but the dataset {dataset.n_snps} SNPs; "
                         "build the model config from this dataset")
    if model_config.output != OUTPUT_OF_TRAIT[dataset.trait_type]:
        raise InputError(f"a {model_config.output} output cannot fit the dataset's {dataset.trait_type} trait; "
                         f"build the model config with output={OUTPUT_OF_TRAIT[dataset.trait_type]!r}")
    if null and permute_seed is None:
        permute_seed = seed
    if not null and permute_seed is not None:
        raise InputError("--permute-seed is only meaningful with --null; drop it or add --null")
    device = resolve_device(train_config.device)
    bf16 = train_config.bf16 and device.type == "cuda"
    if train_config.bf16 and not bf16:
        log.warning("bf16 autocast is only used on CUDA; training in float32 on %s", device)
    risk = collapse_risk(train_config.lr, dataset.n_snps, input_dropout=model_config.input_dropout)
    if risk:
        log.warning(risk)
    return permute_seed, device, bf16


def train_model(
    dataset: PreparedDataset,
    *,
    seed: int,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    null: bool = False,
    permute_seed: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    covariates: np.ndarray | None = None,
) -> TrainResult:
    """Train one network with the paper's recipe (docs/method.md §2).

    The steps: :func:`_select_rows` (rows, labels, balancing), :func:`_setup` (network, optimiser,
    random streams), :func:`_restore` (from a checkpoint), :func:`_fit` (per epoch :func:`_train_epoch`
    with a batch kernel, :func:`_validate`, :func:`_checkpoint_state`), then the result.

    Parameters
    ----------
    dataset
        Prepared dataset; rows with split ``train`` are trained on, ``val`` rows are scored each epoch.
    seed
        Model seed: weight initialisation, dropout, noise, the balancing draw and the shuffles.
    model_config
        Architecture; default ``ModelConfig(n_snps=dataset.n_snps)`` (the paper's genome-wide setting).
    train_config
        Recipe; default :class:`TrainConfig` (paper values).
    null
        Train a null model: the same recipe on a seeded permutation of the training rows' labels (applied
        before balancing; validation labels are left as they are).
    permute_seed
        Seed of that permutation; defaults to ``seed`` for null models; must be ``None`` for real models.
    checkpoint_dir
        Folder for ``checkpoint.pt`` (model, optimiser, all RNG states, epoch, history), written
        atomically every ``train_config.checkpoint_every`` epochs and after the last one. When it holds a
        checkpoint of the same run, training continues from it and ends with the weights an
        uninterrupted run would have (exactly so on CPU).
    on_epoch_end
        Called as ``on_epoch_end(epoch, row)`` after each epoch (and its checkpoint); may raise to stop.
    covariates
        Raw values, dataset rows × ``model_config.covariates`` (docs/method.md §2); nulls get the same.

    Returns
    -------
    TrainResult
        The network, its history, ``meta`` (reproducible facts, listed in :class:`TrainResult`) and
        ``info`` (run facts for ``train.json``).

    Raises
    ------
    InputError
        Inconsistent options, no training rows, a class missing from the training rows, or a checkpoint
        of another run in ``checkpoint_dir``.
    """
    model_config = model_config or ModelConfig(n_snps=dataset.n_snps, output=OUTPUT_OF_TRAIT[dataset.trait_type])
    train_config = train_config or TrainConfig()
    permute_seed, device, bf16 = _check_options(dataset, model_config, train_config, seed=seed, null=null,
                                                permute_seed=permute_seed)
    covariates = _check_covariates(dataset, model_config, covariates)
    rows = _select_rows(dataset, seed=seed, null=null, permute_seed=permute_seed, balance=train_config.balance)
    meta = _run_meta(rows, seed=seed, null=null, permute_seed=permute_seed, n_snps=dataset.n_snps,
                     model_config=model_config, train_config=train_config)
    fingerprint = _fingerprint(seed=seed, null=null, permute_seed=permute_seed, model_config=model_config,
                               train_config=train_config, dataset=dataset, device=device, covariates=covariates)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    started = time.perf_counter()
    with torch_threads(train_config.threads), torch.random.fork_rng(devices=fork_devices):
        data = _to_device(dataset, rows, device, covariates)
        run = _setup(model_config, train_config, data, seed=seed, bf16=bf16)
        if ckpt_dir is not None:
            _restore(run, ckpt_dir, fingerprint=fingerprint, epochs=train_config.epochs)
        _fit(run, data, train_config, bf16=bf16, fingerprint=fingerprint, ckpt_dir=ckpt_dir,
             on_epoch_end=on_epoch_end)
        run.kernel.finish(run.model)
        meta.update(_keep_weights(run, train_config.keep))
    return _result(run, meta, device=device, bf16=bf16, threads=train_config.threads,
                   seconds=time.perf_counter() - started)


def _result(run: _Run, meta: dict[str, Any], *, device: torch.device, bf16: bool, threads: int | None,
            seconds: float) -> TrainResult:
    """Assemble :class:`TrainResult` from a finished run: the model on the CPU, the history table, the
    reproducible ``meta`` and the run facts (device, threads, kernel, resume point, wall time)."""
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": threads or torch.get_num_threads(),
        "bf16": bf16,
        "input_dropout_kernel": run.kernel.name,
        "resumed_from_epoch": run.start_epoch,
        "seconds": seconds,
    }
    frame = pd.DataFrame(run.history, columns=HISTORY_COLUMNS)
    frame["epoch"] = frame["epoch"].astype(int)
    return TrainResult(model=run.model.cpu().eval(), history=frame, meta=meta, info=info)


__all__ = ["TrainConfig", "TrainResult", "permute_training_labels", "resolve_device",
           "roc_auc", "train_model"]
