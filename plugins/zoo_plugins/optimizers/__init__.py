"""Hook implementations for the built-in optimizers (torch.optim), resolved by name like every kind."""

import zoo
from zoo.specs import OptimizerSpec, Option

BETAS = (Option("beta1", 0.9, "decay of the gradient average", minimum=0, maximum=1),
         Option("beta2", 0.999, "decay of the squared-gradient average", minimum=0, maximum=1),
         Option("eps", 1e-8, "added to the denominator", minimum=0, maximum=1, exclusive_minimum=True))


@zoo.hookimpl
def zoo_register_optimizers() -> list[OptimizerSpec]:
    module = "zoo_plugins.optimizers.torch_optim"
    return [
        OptimizerSpec("sgd", "SGD with momentum (--momentum, 0.9 as the report)", f"{module}:sgd",
                      options=(Option("nesterov", False, "Nesterov momentum"),), tags=("report",)),
        OptimizerSpec("adam", "Adam (L2 weight decay through the gradient)", f"{module}:adam", options=BETAS),
        OptimizerSpec("adamw", "AdamW (decoupled weight decay)", f"{module}:adamw", options=BETAS),
    ]
