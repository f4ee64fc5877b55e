"""The training family: the stages of a fit, each a function of a spec, data and networks (no
estimator): a network's job on its node's balanced data, the flat network a tree starts from, a
shared trunk's heads or branches, the work folder a training resumes from, the joint fine-tuning,
and the retraining of a transferred network."""
