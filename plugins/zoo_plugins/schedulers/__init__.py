"""Hook implementations for the built-in learning-rate schedules (pure functions of the step)."""

import zoo
from zoo.specs import Option, SchedulerSpec


@zoo.hookimpl
def zoo_register_schedulers() -> list[SchedulerSpec]:
    module = "zoo_plugins.schedulers.schedules"
    return [
        SchedulerSpec("constant", "the base learning rate throughout (the report's)", f"{module}:constant",
                      tags=("report",)),
        SchedulerSpec("cosine", "half a cosine from the base rate down to final_lr_ratio x base", f"{module}:cosine",
                      options=(Option("final_lr_ratio", 0.0, "learning rate at the end, as a fraction of the base",
                                      minimum=0, maximum=1),)),
        SchedulerSpec("poly", "(1 - t)^power decay to zero (DeepLab's and MMSegmentation's default)", f"{module}:poly",
                      options=(Option("power", 0.9, "exponent of the decay", minimum=0, maximum=100),)),
        SchedulerSpec("step", "multiply by factor every every_epochs epochs", f"{module}:step",
                      options=(Option("every_epochs", 10, "epochs between decays", minimum=1, maximum=100_000),
                               Option("factor", 0.1, "multiplier at each decay", minimum=0, maximum=1,
                                      exclusive_minimum=True))),
        SchedulerSpec("onecycle", "one cycle (Smith): cosine up from base/div_factor to the base over pct_start, "
                      "then down to base/(div_factor*final_div_factor)", f"{module}:onecycle",
                      options=(Option("pct_start", 0.3, "fraction of the steps spent rising", minimum=0, maximum=1,
                                      exclusive_minimum=True),
                               Option("div_factor", 25.0, "base / starting learning rate", minimum=1, maximum=1e6),
                               Option("final_div_factor", 1e4, "starting / final learning rate", minimum=1,
                                      maximum=1e9))),
    ]
