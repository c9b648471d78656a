"""A tiny logger: one line per validation in RUN/example-log.txt. The shape a W&B or MLflow logger
takes: open on train start, write on events, close at the end; main process only."""

from zoo.engine.callbacks import Callback


class TextLogger(Callback):
    def __init__(self, keys: str = "train_loss,valid_dice"):
        self.keys = [k.strip() for k in keys.split(",") if k.strip()]
        self.file = None

    def on_train_start(self, state):
        if state.is_main:
            self.file = open(state.run_dir / "example-log.txt", "a")

    def on_validation_end(self, state):
        if self.file is not None and state.metrics is not None:
            values = " ".join(f"{k}={state.metrics[k]:.4f}" for k in self.keys if k in state.metrics)
            self.file.write(f"epoch {state.epoch} step {state.global_step} {values}\n")
            self.file.flush()

    def on_train_end(self, state):
        if self.file is not None:
            self.file.close()
            self.file = None
