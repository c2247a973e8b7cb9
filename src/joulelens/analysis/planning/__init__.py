"""Planning: time-energy frontiers, deadline-constrained choices, throughput per watt,
power-budgeted datacenters, predictions for unmeasured batch sizes, and advice.

Library entry points (the CLI and the HTML report call these):

* :func:`pareto_frontier` / :func:`pareto_mask`      time-energy Pareto frontier
* :func:`plan`                                        min-energy config under a deadline
* :func:`throughput_per_watt`, :func:`datacenter`     work per watt; facility sizing
* :func:`predict`, :class:`SweepCurve`                interpolation with an uncertainty band
* :func:`leave_one_out`                               validation against the logistic fit
* :func:`advise`, :func:`deadline_savings`            recommendations
"""

from joulelens.analysis.planning.advise import Advice, Change, Option, advise
from joulelens.analysis.planning.candidates import (
    Candidate,
    LatencyMetric,
    candidate,
    candidates,
    throughput_per_watt,
)
from joulelens.analysis.planning.curves import SetupKey, SweepCurve, group_setups, setup_key
from joulelens.analysis.planning.datacenter import (
    DatacenterPlan,
    Deployment,
    Facility,
    PowerBasis,
    datacenter,
    deploy,
)
from joulelens.analysis.planning.deadline import BudgetPer, Choice, Constraints, Plan, plan
from joulelens.analysis.planning.frontier import FrontierPoint, pareto_frontier, pareto_mask
from joulelens.analysis.planning.predict import (
    Prediction,
    matching_curves,
    predict,
    predicted_candidates,
)
from joulelens.analysis.planning.savings import DEFAULT_BATCH_CAP, SavingsRow, deadline_savings
from joulelens.analysis.planning.validate import ValidationReport, leave_one_out

__all__ = [
    "DEFAULT_BATCH_CAP",
    "Advice",
    "BudgetPer",
    "Candidate",
    "Change",
    "Choice",
    "Constraints",
    "DatacenterPlan",
    "Deployment",
    "Facility",
    "FrontierPoint",
    "LatencyMetric",
    "Option",
    "Plan",
    "PowerBasis",
    "Prediction",
    "SavingsRow",
    "SetupKey",
    "SweepCurve",
    "ValidationReport",
    "advise",
    "candidate",
    "candidates",
    "datacenter",
    "deadline_savings",
    "deploy",
    "group_setups",
    "leave_one_out",
    "matching_curves",
    "pareto_frontier",
    "pareto_mask",
    "plan",
    "predict",
    "predicted_candidates",
    "setup_key",
    "throughput_per_watt",
]
