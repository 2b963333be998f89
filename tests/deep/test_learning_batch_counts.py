"""Online learning for a batch of agents gives every count of the model the batch, learned or not: a model with pD,
pC or pE beside the learned pA used to fail at the first step (each count must be shaped like its array)."""

import torch

import aif
import aif_deep


def test_a_batch_learning_A_keeps_the_other_counts_shaped_like_their_arrays():
    tm = aif_deep.TabularModel.from_aif(aif.envs.TMaze().generative_model())
    tm = tm.replace(pA=[a.clone() * 10 for a in tm.A], pD=[d.clone() * 4 for d in tm.D])
    agent = aif_deep.Agent(tm, batch_shape=(4,), learning=aif.Learning(learn_A=True, learn_B=False))
    agent.step(torch.zeros(4, tm.num_modalities, dtype=torch.long))
    for f, D_f in enumerate(agent.model.D):
        assert agent.model.pD[f].shape == D_f.shape == (4, tm.num_states[f])
        torch.testing.assert_close(agent.model.pD[f][2], tm.pD[f])  # copied to each agent, not learned
    assert agent.model.pA[0].shape[0] == 4
    assert not torch.equal(agent.model.pA[0][0], tm.pA[0])  # A was learned from the step
