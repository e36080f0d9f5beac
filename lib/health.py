"""Training health checks for GANomaly: non-finite losses, a saturated D, a stalled reconstruction.

The paper's own run shows why these matter: its discriminator loss sat at
exactly 50.000 from epoch 4 to epoch 49.  ``nn.BCELoss`` clamps ``log`` at
-100, so ``err_d = 0.5 * (BCE(real, 1) + BCE(fake, 0))`` reaches 50 when D
answers 0 (or 1) for every image: the sigmoid is flat, D gets no gradient, and
from then on the model is an autoencoder plus latent consistency.  Nobody was
warned.  :class:`HealthMonitor` is fed every iteration's losses and says so.
"""
from __future__ import annotations

import math

__all__ = ["HealthMonitor", "NonFiniteLossError"]

LOSS_KEYS = ("err_d", "err_g", "err_g_adv", "err_g_con", "err_g_enc")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite: training must stop (the last good checkpoint stays)."""


class HealthMonitor:
    """Watch the losses of a training run.

    Parameters
    ----------
    ceiling : float
        err_d at or above this value counts as saturated.  50.0 is where BCE's
        log clamp (-100) puts err_d when D gives one class the wrong extreme
        answer for every image.
    floor : float
        err_d below this counts as saturated the other way (D wins
        trivially; the original re-initialises D below 1e-5).
    patience : int
        Epochs without a new lowest epoch-mean err_g_con before warning that
        the reconstruction loss stopped improving.
    """

    def __init__(self, ceiling: float = 50.0, floor: float = 1e-5, patience: int = 3) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.ceiling = float(ceiling)
        self.floor = float(floor)
        self.patience = int(patience)
        self._warnings: list[str] = []
        self.iteration = 0  # step() calls so far, over the whole run
        # this epoch
        self._steps = 0
        self._steps_high = 0
        self._steps_low = 0
        # saturation streaks: warn when one starts, not again every epoch
        self._saturated: str | None = None  # "high", "low" or None
        self._streak_start: int | None = None
        # reconstruction plateau
        self._best_con: float | None = None
        self._best_epoch: int | None = None
        self._since_best = 0
        self._plateau_warned = False

    @property
    def warnings(self) -> list[str]:
        """Every warning so far, oldest first (a copy)."""
        return list(self._warnings)

    def step(self, errors: dict[str, float]) -> None:
        """Record one iteration's losses.

        Parameters
        ----------
        errors : dict of str to float
            err_d, err_g, err_g_adv, err_g_con, err_g_enc of this iteration.

        Raises
        ------
        NonFiniteLossError
            If any loss is NaN or infinite.
        """
        self.iteration += 1
        bad = {k: v for k, v in errors.items() if not math.isfinite(float(v))}
        if bad:
            shown = ", ".join(f"{k}={float(v)}" for k, v in errors.items())
            message = (f"non-finite loss at iteration {self.iteration} "
                       f"({', '.join(sorted(bad))}): {shown}")
            self._warnings.append(message)
            raise NonFiniteLossError(message)
        if "err_d" in errors:
            err_d = float(errors["err_d"])
            self._steps += 1
            # a tiny tolerance: float32 50.0 can print as 49.99999 after the mean
            self._steps_high += err_d >= self.ceiling * (1 - 1e-6)
            self._steps_low += err_d < self.floor

    def end_epoch(self, epoch: int, epoch_means: dict[str, float]) -> list[str]:
        """Close an epoch and return the warnings it raised (also kept in :attr:`warnings`).

        Parameters
        ----------
        epoch : int
            The epoch just finished, as the run numbers it (0-based in the original log).
        epoch_means : dict of str to float
            Mean of each loss over the epoch; err_g_con is used.

        Returns
        -------
        list of str
            New warnings, possibly empty.
        """
        new: list[str] = []
        steps, high, low = self._steps, self._steps_high, self._steps_low
        self._steps = self._steps_high = self._steps_low = 0

        state = None
        if steps and high == steps:
            state = "high"
        elif steps and low == steps:
            state = "low"
        if state is not None and state != self._saturated:
            self._streak_start = epoch
            if state == "high":
                new.append(
                    f"epoch {epoch}: D saturated: err_d stayed at its ceiling {self.ceiling:g} "
                    f"(BCE's log clamp) on all {steps} iterations. D answers 0 or 1 for every "
                    f"image and gets no gradient, so training is now an autoencoder; consider "
                    f"restarting with another seed or a lower learning rate for D")
            else:
                new.append(
                    f"epoch {epoch}: D saturated: err_d stayed below {self.floor:g} on all "
                    f"{steps} iterations (D wins trivially; it is re-initialised each time)")
        elif state is None and self._saturated is not None:
            self._streak_start = None
        self._saturated = state

        con = epoch_means.get("err_g_con")
        if con is not None and math.isfinite(float(con)):
            con = float(con)
            if self._best_con is None or con < self._best_con:
                self._best_con, self._best_epoch = con, epoch
                self._since_best = 0
                self._plateau_warned = False
            else:
                self._since_best += 1
                if self._since_best >= self.patience and not self._plateau_warned:
                    self._plateau_warned = True
                    rel = (con - self._best_con) / self._best_con if self._best_con else math.inf
                    new.append(
                        f"epoch {epoch}: reconstruction loss err_g_con has not improved for "
                        f"{self._since_best} epochs: {con:.6g} now vs best {self._best_con:.6g} "
                        f"at epoch {self._best_epoch} ({rel:+.2%} relative)")
        self._warnings.extend(new)
        return new
