"""Hand-worked numbers for `rljax.losses` and `rljax.exploration`.

`rljax.losses`: the one-step TD errors (`td_learning`, `sarsa`, `expected_sarsa`,
`q_learning`, `double_q_learning`) and `td_loss`; the multi-step `discounted_returns` and
`gae` (terminations, truncations, lambda, non-square rollouts and vmapping over the
environment axis); `masked_mean`, `normalize`, `entropy` and the batch losses
`policy_gradient_loss`, `entropy_loss`, `value_loss`. Every expected value is worked out by
hand here (plain Python / NumPy), never by another rljax function. Also checked: where
gradients flow (targets, bootstraps and advantages are constants), that masked entries
change nothing, and that inputs of the wrong rank raise.

`rljax.exploration`: epsilon-greedy probabilities and their tie rule, inverse-CDF sampling
against those probabilities, greedy actions (lowest index among ties), `softmax_policy` and
the epsilon schedule `epsilon_at`.

Convention: `discount_t` includes gamma (`gamma * Transition.discount`), so a gamma-free
discount `d` of the hand-worked rollouts (gamma `G = 0.5`) appears here as `G * d`.

Speed: inputs are NumPy arrays and every rljax call goes through `jax.jit` (`jitted`), so a
call costs one small compilation instead of one per primitive; the functions are looked up
at call time, so a test sees whatever `rljax.losses.<fn>` is when it runs.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax import exploration, losses

G = 0.5  # gamma of the hand-worked rollouts

jitted = functools.cache(jax.jit)


def jgrad(fn, argnums=0):
    return jax.jit(jax.grad(fn, argnums))


def f32(x):
    return np.asarray(x, np.float32)


def i32(x):
    return np.asarray(x, np.int32)


def close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


def _gae(r, discount, done, v_tm1, v_t, lam):
    done = np.asarray(done, bool)
    out = jitted(losses.gae)(f32(r), f32(discount), done, f32(v_tm1), f32(v_t), f32(lam))
    return tuple(np.asarray(x) for x in out)


def _returns(r, discount, done):
    out = jitted(losses.discounted_returns)(f32(r), f32(discount), np.asarray(done, bool))
    return tuple(np.asarray(x) for x in out)


# --- One-step TD errors ----------------------------------------------------------------------


def test_td_errors_hand_worked():
    # r = 2, gamma = 0.5, not terminal; Q(s', .) = [1, 3]; the estimate Q(s, a_tm1=0) = 0.5.
    q_tm1, a_tm1, r, q_t = f32([0.5, 7.0]), i32(0), f32(2.0), f32([1.0, 3.0])
    # TD(0): target 2 + 0.5 * 4 = 4, estimate 1.5.
    td = jitted(losses.td_learning)(f32(1.5), r, f32(G), f32(4.0))
    assert float(td) == pytest.approx(2.5)
    # SARSA with a_t = 0: target 2 + 0.5 * 1 = 2.5.
    td = jitted(losses.sarsa)(q_tm1, a_tm1, r, f32(G), q_t, i32(0))
    assert float(td) == pytest.approx(2.0)
    # Q-learning: target 2 + 0.5 * 3 = 3.5.
    td = jitted(losses.q_learning)(q_tm1, a_tm1, r, f32(G), q_t)
    assert float(td) == pytest.approx(3.0)
    # Expected SARSA with pi = [0.25, 0.75]: target 2 + 0.5 * (0.25 + 2.25) = 3.25.
    td = jitted(losses.expected_sarsa)(q_tm1, a_tm1, r, f32(G), q_t, f32([0.25, 0.75]))
    assert float(td) == pytest.approx(2.75)
    # A termination (discount 0): no bootstrap, target 2.
    td = jitted(losses.q_learning)(q_tm1, a_tm1, r, f32(0.0), q_t)
    assert float(td) == pytest.approx(1.5)
    td = jitted(losses.td_learning)(f32(1.5), r, f32(0.0), f32(4.0))
    assert float(td) == pytest.approx(0.5)


def test_sarsa_uses_the_next_action_taken():
    # Q(s', .) = [4, 8], r = 1, gamma = 0.5; the estimate Q(s, a_tm1=1) = 1.5.
    q_tm1, a_tm1, r, q_t = f32([0.25, 1.5]), i32(1), f32(1.0), f32([4.0, 8.0])
    sarsa = jitted(losses.sarsa)
    # The exploratory next action 0 gives target 1 + 0.5 * 4 = 3, not the max's 5.
    assert float(sarsa(q_tm1, a_tm1, r, f32(G), q_t, i32(0))) == pytest.approx(1.5)
    assert float(sarsa(q_tm1, a_tm1, r, f32(G), q_t, i32(1))) == pytest.approx(3.5)
    # Terminal: target 1.
    assert float(sarsa(q_tm1, a_tm1, r, f32(0.0), q_t, i32(1))) == pytest.approx(-0.5)


def test_q_learning_and_double_q_learning_hand_worked():
    q_value = f32([2.0, 5.0])  # target network
    q_select = f32([3.0, 1.0])  # online network: picks action 0
    q_tm1, a_tm1, r, d = f32([0.5, -1.0]), i32(1), f32(1.0), f32(0.9)
    q_learning, double = jitted(losses.q_learning), jitted(losses.double_q_learning)
    # DQN: target 1 + 0.9 * max(2, 5) = 5.5; estimate -1.
    assert float(q_learning(q_tm1, a_tm1, r, d, q_value)) == pytest.approx(6.5)
    # Double DQN: the online net picks action 0, the target net values it: 1 + 0.9 * 2 = 2.8.
    assert float(double(q_tm1, a_tm1, r, d, q_value, q_select)) == pytest.approx(3.8)
    # Termination (discount 0): no bootstrap.
    assert float(q_learning(q_tm1, a_tm1, r, f32(0.0), q_value)) == pytest.approx(2.0)
    assert float(double(q_tm1, a_tm1, r, f32(0.0), q_value, q_select)) == pytest.approx(2.0)


def test_double_q_learning_values_the_selected_action_with_q_t_value():
    # The selector's argmax is action 1; its value comes from q_t_value: 5. DQN's max would
    # be 7; the roles swapped would give q_t_selector[argmax q_t_value] = q_t_selector[2] = 1.
    q_value, q_select = f32([2.0, 5.0, 7.0]), f32([0.0, 9.0, 1.0])
    q_tm1, a_tm1, r, d = f32([0.0, 0.0, 1.0]), i32(2), f32(1.0), f32(0.5)
    double = jitted(losses.double_q_learning)
    assert float(double(q_tm1, a_tm1, r, d, q_value, q_select)) == pytest.approx(2.5)
    # With the value net as its own selector it is Q-learning: 1 + 0.5 * 7 - 1.
    assert float(double(q_tm1, a_tm1, r, d, q_value, q_value)) == pytest.approx(3.5)


def test_expected_sarsa_with_epsilon_greedy_probs():
    # Epsilon-greedy (epsilon 0.3, 3 actions, greedy action 1): pi = [0.1, 0.8, 0.1].
    q_t = f32([1.0, 4.0, 2.0])
    probs = f32([0.1, 0.8, 0.1])
    q_tm1, a_tm1, r, d = f32([2.0, 0.5, 3.0]), i32(0), f32(1.0), f32(0.5)
    # 1 + 0.5 * (0.1 * 1 + 0.8 * 4 + 0.1 * 2) - 2 = 1 + 0.5 * 3.5 - 2 = 0.75.
    td = jitted(losses.expected_sarsa)(q_tm1, a_tm1, r, d, q_t, probs)
    assert float(td) == pytest.approx(0.75)
    # Neither Q-learning's (1 + 0.5 * 4 - 2 = 1) nor SARSA's with a_t = 0 (-0.5).
    assert float(jitted(losses.q_learning)(q_tm1, a_tm1, r, d, q_t)) == pytest.approx(1.0)
    assert float(jitted(losses.sarsa)(q_tm1, a_tm1, r, d, q_t, i32(0))) == pytest.approx(-0.5)


def test_td_errors_differentiate_only_the_estimate():
    r, d, a_tm1 = f32(1.0), f32(0.9), i32(1)
    q_tm1, q_t = f32([1.0, 2.0, 3.0]), f32([4.0, 6.0, 5.0])
    minus_onehot = [0.0, -1.0, 0.0]
    # TD(0): d/dv_tm1 = -1, d/dv_t = 0.
    g_vtm1, g_vt = jgrad(losses.td_learning, (0, 3))(f32(2.0), r, d, f32(3.0))
    assert (float(g_vtm1), float(g_vt)) == (-1.0, 0.0)
    grads = {
        "sarsa": jgrad(losses.sarsa, (0, 4))(q_tm1, a_tm1, r, d, q_t, i32(2)),
        "q_learning": jgrad(losses.q_learning, (0, 4))(q_tm1, a_tm1, r, d, q_t),
        "expected_sarsa": jgrad(losses.expected_sarsa, (0, 4, 5))(
            q_tm1, a_tm1, r, d, q_t, f32([0.2, 0.5, 0.3])
        ),
        "double_q_learning": jgrad(losses.double_q_learning, (0, 4, 5))(
            q_tm1, a_tm1, r, d, q_t, f32([0.0, 1.0, 0.0])
        ),
    }
    for name, (g_tm1, *g_bootstrap) in grads.items():
        np.testing.assert_array_equal(g_tm1, minus_onehot, err_msg=name)
        for g in g_bootstrap:
            np.testing.assert_array_equal(g, np.zeros(3), err_msg=name)
    # Reward and discount are constants of the target too.
    g_r, g_d = jgrad(losses.q_learning, (2, 3))(q_tm1, a_tm1, r, d, q_t)
    assert (float(g_r), float(g_d)) == (0.0, 0.0)


def test_td_loss_huber_or_squared():
    td = f32([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])
    huber = [2.5, 0.5, 0.125, 0.0, 0.125, 1.5]  # 0.5 x^2 for |x| <= 1, |x| - 0.5 beyond
    squared = [9.0, 1.0, 0.25, 0.0, 0.25, 4.0]
    # The flag may be traced (a hyperparameter vmapped over).
    both = jax.jit(jax.vmap(losses.td_loss, (None, 0)))(td, np.array([True, False]))
    close(both, [huber, squared])
    # A Python bool works too.
    close(losses.td_loss(td, True), huber)
    # Huber's slope is clipped at 1 beyond |x| = 1; the squared error's is 2x.
    slopes = jax.jit(jax.vmap(jax.grad(lambda x, h: losses.td_loss(x, h).sum()), (None, 0)))
    close(slopes(td, np.array([True, False])), [[-1, -1, -0.5, 0, 0.5, 1], [-6, -2, -1, 0, 1, 4]])


# --- Monte-Carlo returns -------------------------------------------------------------------


def test_discounted_returns_hand_worked_episode():
    returns, valid = _returns([1.0, 2.0, 3.0], [G, G, 0.0], [False, False, True])
    # G_2 = 3, G_1 = 2 + 0.5 * 3 = 3.5, G_0 = 1 + 0.5 * 3.5 = 2.75
    close(returns, [2.75, 3.5, 3.0])
    np.testing.assert_array_equal(valid, [True, True, True])
    assert returns.dtype == np.float32 and valid.dtype == np.bool_


def test_discounted_returns_mask_steps_after_the_last_done():
    # A done at index 1 (a truncation: its discount is still gamma); a new episode starts at
    # index 2 and does not end within the rollout.
    returns, valid = _returns([1.0, 2.0, 4.0, 8.0], [G] * 4, [False, True, False, False])
    np.testing.assert_array_equal(valid, [True, True, False, False])
    # The done cuts the return: no rewards of the next episode leak in.
    # G_1 = 2, G_0 = 1 + 0.5 * 2 = 2; G_3 = 8, G_2 = 4 + 0.5 * 8 = 8 (incomplete).
    close(returns, [2.0, 2.0, 8.0, 8.0])


def test_discounted_returns_non_square_rollout():
    # T = 5: a truncation at 1 (discount gamma), a termination at 3 (discount 0), and an
    # unfinished episode at 4.
    returns, valid = _returns(
        [1.0, 2.0, 3.0, 4.0, 5.0], [G, G, G, 0.0, G], [False, True, False, True, False]
    )
    # G_4 = 5; G_3 = 4; G_2 = 3 + 0.5 * 4 = 5; G_1 = 2; G_0 = 1 + 0.5 * 2 = 2.
    close(returns, [2.0, 2.0, 5.0, 4.0, 5.0])
    np.testing.assert_array_equal(valid, [True, True, True, True, False])


def test_discounted_returns_vmapped_over_environments():
    # [T=3, N=2]: env 0 is one whole episode, env 1 ends at 0 and then runs on unfinished.
    r = f32([[1.0, 1.0], [2.0, 4.0], [3.0, 8.0]])
    discount = f32([[G, 0.0], [G, G], [0.0, G]])
    done = np.array([[False, True], [False, False], [True, False]])
    vreturns = jax.jit(jax.vmap(losses.discounted_returns, in_axes=1, out_axes=1))
    returns, valid = (np.asarray(x) for x in vreturns(r, discount, done))
    assert returns.shape == valid.shape == (3, 2)
    close(returns[:, 0], [2.75, 3.5, 3.0])
    close(returns[:, 1], [1.0, 8.0, 8.0])  # G_1 = 4 + 0.5 * 8
    np.testing.assert_array_equal(valid, [[True, True], [True, False], [True, False]])


# --- GAE and lambda-returns ----------------------------------------------------------------


def test_gae_lambda():
    lam = 0.5
    r, v_tm1, v_t = [1.0, 0.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]
    adv, targets = _gae(r, [G] * 3, [False] * 3, v_tm1, v_t, lam)
    # deltas: 1 + 0.5 * 2 - 1 = 1, 0 + 0.5 * 3 - 2 = -0.5, 2 + 0.5 * 4 - 3 = 1.
    # A_2 = 1, A_1 = -0.5 + 0.25 * 1 = -0.25, A_0 = 1 + 0.25 * -0.25 = 0.9375.
    close(adv, [0.9375, -0.25, 1.0])
    close(targets, [1.9375, 1.75, 4.0])
    # A termination stops the trace even with lambda > 0.
    adv, _ = _gae(r, [G, 0.0, G], [False, True, False], v_tm1, v_t, lam)
    # A_1 = 0 + 0 - 2 = -2, A_0 = 1 + 0.25 * -2 = 0.5.
    close(adv, [0.5, -2.0, 1.0])


def test_n_step_return_over_a_whole_rollout():
    # No episode ends: G_0 = r_0 + g r_1 + g^2 r_2 + g^3 V(s'_2) = 1 + 1 + 1 + 2 = 5.
    adv, targets = _gae(
        [1.0, 2.0, 4.0], [G] * 3, [False] * 3, [0.0, 3.0, 5.0], [3.0, 5.0, 16.0], 1.0
    )
    # G_1 = 2 + 0.5 * 4 + 0.25 * 16 = 8; G_2 = 4 + 0.5 * 16 = 12.
    close(targets, [5.0, 8.0, 12.0])
    close(adv, [5.0, 5.0, 7.0])


def test_n_step_returns_with_a_truncation():
    # Step 1 is cut by the time limit: it bootstraps from its true final observation
    # (V(s'_1) = 6) and the return does not run on into step 2's new episode.
    v_tm1, v_t = [1.0, 2.0, 4.0], [2.0, 6.0, 8.0]
    adv, targets = _gae([1.0, 1.0, 1.0], [G] * 3, [False, True, False], v_tm1, v_t, 1.0)
    # G_1 = 1 + 0.5 * 6 = 4, G_0 = 1 + 0.5 * 4 = 3, G_2 = 1 + 0.5 * 8 = 5.
    close(targets, [3.0, 4.0, 5.0])
    close(adv, [2.0, 2.0, 1.0])


def test_n_step_returns_with_a_termination():
    # Steps 0-1 are one episode that terminates at step 1; step 2 starts a new one and is
    # the rollout's last step, so it bootstraps from V(s'_2) = 8.
    v_tm1, v_t = [1.0, 2.0, 4.0], [2.0, 100.0, 8.0]  # V(s'_0) = V(s_1) = 2
    adv, targets = _gae([1.0, 2.0, 3.0], [G, 0.0, G], [False, True, False], v_tm1, v_t, 1.0)
    # G_1 = 2 (no bootstrap: V(s'_1) = 100 is ignored), G_0 = 1 + 0.5 * 2 = 2,
    # G_2 = 3 + 0.5 * 8 = 7.
    close(targets, [2.0, 2.0, 7.0])
    close(adv, [1.0, 0.0, 3.0])


def test_gae_truncation_bootstraps_but_stops_the_trace():
    # Step 0 is truncated (discount gamma, done): A_0 = 1 + 0.5 * 10 - 0 = 6, whatever
    # follows. A continuing trace would add 0.5 * 0.9 * A_1 = 0.45 * 11.
    r, v_tm1, v_t = [1.0, 1.0], [0.0, 0.0], [10.0, 20.0]
    adv, targets = _gae(r, [G, G], [True, False], v_tm1, v_t, 0.9)
    close(adv, [6.0, 11.0])
    close(targets, [6.0, 11.0])
    # The same step terminated (discount 0) does not bootstrap: A_0 = 1.
    adv, _ = _gae(r, [0.0, G], [True, False], v_tm1, v_t, 0.9)
    close(adv, [1.0, 11.0])
    # Not done: A_0 = 6 + 0.45 * 11 = 10.95.
    adv, _ = _gae(r, [G, G], [False, False], v_tm1, v_t, 0.9)
    close(adv, [10.95, 11.0])


def test_gae_lambda_zero_is_one_step_td_errors():
    r = [1.0, -2.0, 0.5, 3.0]
    discount = [0.9, 0.0, 0.9, 0.9]
    done = [False, True, True, False]
    v_tm1 = [0.5, 1.5, -1.0, 2.0]
    v_t = [1.5, 7.0, 4.0, -3.0]
    adv, targets = _gae(r, discount, done, v_tm1, v_t, 0.0)
    # r + discount * v_t - v_tm1: [1 + 1.35 - 0.5, -2 + 0 - 1.5, 0.5 + 3.6 + 1, 3 - 2.7 - 2].
    close(adv, [1.85, -3.5, 5.1, -1.7])
    close(targets, [2.35, -2.0, 4.1, 0.3])


def test_gae_non_square_rollout():
    # T = 5, lambda = 0.5: a truncation at 2 (discount gamma, done: bootstraps from its final
    # observation V = 5), a new episode from 3, terminated at 4 (V(s'_4) = 9 ignored).
    r = [1.0, 0.0, 2.0, 1.0, 3.0]
    v_tm1 = [1.0, 2.0, 3.0, 1.0, 2.0]
    v_t = [2.0, 3.0, 5.0, 2.0, 9.0]
    discount = [G, G, G, G, 0.0]
    done = [False, False, True, False, True]
    adv, targets = _gae(r, discount, done, v_tm1, v_t, 0.5)
    # deltas: 1 + 1 - 1 = 1, 0 + 1.5 - 2 = -0.5, 2 + 2.5 - 3 = 1.5, 1 + 1 - 1 = 1, 3 - 2 = 1.
    # trace factors 0.5 * 0.5 * (1 - done) = [0.25, 0.25, 0, 0.25, 0].
    # A_4 = 1, A_3 = 1 + 0.25 = 1.25, A_2 = 1.5, A_1 = -0.5 + 0.375 = -0.125,
    # A_0 = 1 - 0.03125 = 0.96875.
    close(adv, [0.96875, -0.125, 1.5, 1.25, 1.0])
    close(targets, [1.96875, 1.875, 4.5, 2.25, 3.0])


def test_gae_vmapped_over_environments_on_the_second_axis():
    # [T=3, N=2] arrays, time first as in a rollout; each environment differs.
    # env 0 is test_gae_lambda's first rollout; env 1 terminates at step 1.
    r = f32([[1.0, 0.0], [0.0, 2.0], [2.0, 1.0]])
    discount = f32([[G, G], [G, 0.0], [G, G]])
    done = np.array([[False, False], [False, True], [False, False]])
    v_tm1 = f32([[1.0, 2.0], [2.0, 1.0], [3.0, 0.0]])
    v_t = f32([[2.0, 1.0], [3.0, 0.0], [4.0, 3.0]])
    vgae = jax.jit(jax.vmap(losses.gae, in_axes=(1, 1, 1, 1, 1, None), out_axes=1))
    adv, targets = (np.asarray(x) for x in vgae(r, discount, done, v_tm1, v_t, f32(0.5)))
    assert adv.shape == targets.shape == (3, 2)
    close(adv[:, 0], [0.9375, -0.25, 1.0])
    close(targets[:, 0], [1.9375, 1.75, 4.0])
    # env 1: deltas 0 + 0.5 - 2 = -1.5, 2 + 0 - 1 = 1, 1 + 1.5 - 0 = 2.5; traces 0.25, 0.
    # A_2 = 2.5, A_1 = 1, A_0 = -1.5 + 0.25 = -1.25.
    close(adv[:, 1], [-1.25, 1.0, 2.5])
    close(targets[:, 1], [0.75, 2.0, 2.5])


def test_gae_holds_its_outputs_constant():
    r, discount, done = f32([1.0, 2.0]), f32([G, G]), np.array([False, False])

    def total(v_tm1, v_t):
        adv, targets = losses.gae(r, discount, done, v_tm1, v_t, 0.5)
        return jnp.sum(adv) + jnp.sum(targets)

    g_tm1, g_t = jgrad(total, (0, 1))(f32([1.0, 2.0]), f32([3.0, 4.0]))
    np.testing.assert_array_equal(g_tm1, [0.0, 0.0])
    np.testing.assert_array_equal(g_t, [0.0, 0.0])


# --- Policy-gradient and value losses --------------------------------------------------------

# pi = [0.25, 0.75], [0.75, 0.25], [0.5, 0.5]
LOGITS = f32([[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]])
H_QUARTER = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # entropy of [0.25, 0.75]


def test_masked_mean_and_normalize():
    x = f32([1.0, 2.0, 3.0, 100.0])
    w = np.array([True, True, True, False])
    masked_mean = jitted(losses.masked_mean)
    assert float(masked_mean(x, w)) == pytest.approx(2.0)
    # Weights, not just a mask: (1 * 1 + 3 * 3) / 4.
    assert float(masked_mean(x, f32([1.0, 0.0, 3.0, 0.0]))) == pytest.approx(2.5)
    # All masked: 0, not NaN.
    assert float(masked_mean(x, np.zeros(4, bool))) == 0.0
    # normalize: mean 2, std sqrt(2/3) over the valid entries only.
    s = math.sqrt(2.0 / 3.0)
    n = np.asarray(jitted(losses.normalize)(x, w))
    close(n, [-1.0 / s, 0.0, 1.0 / s, 98.0 / s])
    # 2-D works too (over all entries): the same numbers in a [2, 2] block.
    n2 = np.asarray(jitted(losses.normalize)(x.reshape(2, 2), w.reshape(2, 2)))
    close(n2.reshape(-1), n)


def test_masked_entries_change_nothing():
    w = np.array([True, False, True])
    x_a, x_b = f32([1.0, 1e6, 4.0]), f32([1.0, -7.0, 4.0])
    masked_mean, normalize = jitted(losses.masked_mean), jitted(losses.normalize)
    assert float(masked_mean(x_a, w)) == float(masked_mean(x_b, w)) == 2.5
    n_a, n_b = np.asarray(normalize(x_a, w)), np.asarray(normalize(x_b, w))
    close(n_a[::2], [-1.0, 1.0])
    close(n_b[::2], [-1.0, 1.0])
    # Policy gradient: entry 1's logits, action and advantage do not matter.
    pg = jitted(losses.policy_gradient_loss)
    a = i32([1, 1, 0])
    logits_b, a_b = LOGITS.copy(), a.copy()
    logits_b[1], a_b[1] = [5.0, -5.0], 0
    pg_a = pg(LOGITS, a, f32([2.0, -1.0, 4.0]), w)
    pg_b = pg(logits_b, a_b, f32([2.0, 1e6, 4.0]), w)
    # -(log 0.75 * 2 + log 0.5 * 4) / 2
    assert float(pg_a) == pytest.approx(-(math.log(0.75) * 2.0 + math.log(0.5) * 4.0) / 2)
    assert float(pg_b) == pytest.approx(float(pg_a))
    vl = jitted(losses.value_loss)
    vl_a = vl(f32([1.0, 2.0, 3.0]), f32([2.0, 0.0, 1.0]), w)
    vl_b = vl(f32([1.0, 50.0, 3.0]), f32([2.0, -9.0, 1.0]), w)
    assert float(vl_a) == float(vl_b) == pytest.approx((1.0 + 4.0) / 2)
    # Entropy: only entry 0 (pi = [0.25, 0.75]) counts.
    h = jitted(losses.entropy_loss)(LOGITS, f32([1.0, 0.0, 0.0]))
    assert float(h) == pytest.approx(-H_QUARTER, rel=1e-5)


def test_entropy_hand_worked():
    logits = f32([[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0], [2.0, 2.0]])
    close(jitted(losses.entropy)(logits), [H_QUARTER, H_QUARTER, math.log(2.0), math.log(2.0)])
    # A near-deterministic policy has entropy ~0, and no NaN.
    h = jitted(losses.entropy)(f32([[0.0, -200.0]]))
    assert float(h[0]) == pytest.approx(0.0, abs=1e-6)


def test_actor_critic_losses_hand_worked():
    # Ported from a2c.actor_critic_loss(logits, values, actions, adv, targets, 0.5, 0.1).
    logits = LOGITS[:2]
    values, actions = f32([1.0, 2.0]), i32([1, 1])
    adv, targets, w = f32([2.0, -1.0]), f32([3.0, 0.0]), np.ones(2, bool)
    pg = (math.log(0.75) * 2.0 + math.log(0.25) * -1.0) / 2
    vl = ((1.0 - 3.0) ** 2 + (2.0 - 0.0) ** 2) / 2

    def loss(lg, v, adv, tgt, ent_coef):
        parts = (
            losses.policy_gradient_loss(lg, actions, adv, w),
            losses.value_loss(v, tgt, w),
            losses.entropy(lg),
        )
        total = parts[0] + 0.5 * parts[1] + ent_coef * losses.entropy_loss(lg, w)
        return total, parts

    total, (pl, vloss, h) = jax.jit(loss)(logits, values, adv, targets, 0.1)
    assert float(pl) == pytest.approx(-pg, rel=1e-5)
    assert float(vloss) == pytest.approx(vl, rel=1e-5)
    close(h, [H_QUARTER, H_QUARTER])
    assert float(total) == pytest.approx(-pg + 0.5 * vl - 0.1 * H_QUARTER, rel=1e-5)
    # Gradients (no entropy): dL/dlogits_0 = -(onehot(a) - pi) * A / M; dL/dV = c (V - G) 2/M.
    grad = jax.jit(jax.grad(lambda *a: loss(*a)[0], (0, 1, 2, 3)))
    g_logits, g_values, g_adv, g_tgt = grad(logits, values, adv, targets, 0.0)
    close(g_logits[0], -(np.array([0.0, 1.0]) - [0.25, 0.75]) * 2.0 / 2)
    close(g_values, 0.5 * 2 * (np.array([1.0, 2.0]) - [3.0, 0.0]) / 2)
    # Advantages and targets are constants.
    np.testing.assert_array_equal(g_adv, [0.0, 0.0])
    np.testing.assert_array_equal(g_tgt, [0.0, 0.0])


def test_reinforce_policy_loss_with_entropy_bonus():
    # Ported from reinforce.policy_loss(logits, a, adv, valid, entropy_coef), which
    # subtracted entropy_coef * entropy: now policy_gradient_loss + coef * entropy_loss.
    actions = i32([1, 1, 0])
    adv = f32([2.0, -1.0, 100.0])
    valid = np.array([True, True, False])  # the third entry is invalid
    pg = (math.log(0.75) * 2.0 + math.log(0.25) * -1.0) / 2

    def loss(logits, coef):
        return losses.policy_gradient_loss(
            logits, actions, adv, valid
        ) + coef * losses.entropy_loss(logits, valid)

    assert float(jax.jit(loss)(LOGITS, 0.1)) == pytest.approx(-pg - 0.1 * H_QUARTER, rel=1e-5)
    grad = np.asarray(jgrad(loss)(LOGITS, 0.0))
    close(grad[0], -(np.array([0.0, 1.0]) - [0.25, 0.75]) * 2.0 / 2)
    np.testing.assert_array_equal(grad[2], [0.0, 0.0])


def test_policy_gradient_loss_gradient_with_weights():
    # d/dlogits_i = -(onehot(a_i) - pi_i) * A_i * w_i / sum(w); no gradient into A.
    actions, adv, w = i32([1, 1, 0]), f32([2.0, -1.0, 3.0]), f32([2.0, 1.0, 0.0])
    loss = jitted(losses.policy_gradient_loss)(LOGITS, actions, adv, w)
    assert float(loss) == pytest.approx(
        -(2.0 * math.log(0.75) * 2.0 + 1.0 * math.log(0.25) * -1.0) / 3.0, rel=1e-5
    )
    g_logits, g_adv = jgrad(losses.policy_gradient_loss, (0, 2))(LOGITS, actions, adv, w)
    pi = np.array([[0.25, 0.75], [0.75, 0.25], [0.5, 0.5]])
    onehot = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    expected = -(onehot - pi) * (np.array([2.0, -1.0, 3.0]) * [2.0, 1.0, 0.0] / 3.0)[:, None]
    close(g_logits, expected)
    np.testing.assert_array_equal(g_adv, [0.0, 0.0, 0.0])


def test_value_loss_gradient_flows_only_into_the_estimate():
    v, target, w = f32([1.0, 2.0, 5.0]), f32([3.0, 0.0, -4.0]), f32([1.0, 1.0, 0.0])
    # mean((1 - 3)^2, (2 - 0)^2) = 4
    assert float(jitted(losses.value_loss)(v, target, w)) == pytest.approx(4.0)
    g_v, g_target = jgrad(losses.value_loss, (0, 1))(v, target, w)
    close(g_v, [2 * (1.0 - 3.0) / 2, 2 * (2.0 - 0.0) / 2, 0.0])
    np.testing.assert_array_equal(g_target, [0.0, 0.0, 0.0])


# --- Rank checks ---------------------------------------------------------------------------

_s, _v, _a = f32(1.0), f32([1.0, 2.0]), i32(0)
_tn = np.zeros((3, 2), np.float32)  # an unvmapped [T, N] rollout

WRONG_RANK = {
    "td_learning": lambda: losses.td_learning(_v, _s, _s, _s),
    "sarsa": lambda: losses.sarsa(_v, i32([0]), _s, _s, _v, _a),
    "expected_sarsa": lambda: losses.expected_sarsa(_v, _a, _s, _s, _v, _s),
    "q_learning": lambda: losses.q_learning(_v, _a, f32([1.0, 1.0, 1.0]), _s, _v),
    "q_learning_scalar_q": lambda: losses.q_learning(_s, _a, _s, _s, _v),
    "double_q_learning": lambda: losses.double_q_learning(_v, _a, _s, _s, _v, _s),
    "discounted_returns": lambda: losses.discounted_returns(_tn, _tn, _tn > 0),
    "discounted_returns_shapes": lambda: losses.discounted_returns(
        _tn[:, 0], _tn[:2, 0], _tn[:, 0] > 0
    ),
    # An unvmapped [T, N] rollout must not be scanned as one trajectory.
    "gae": lambda: losses.gae(_tn, _tn, _tn > 0, _tn, _tn, 0.5),
    "gae_shapes": lambda: losses.gae(*[_tn[:, 0]] * 2, _tn[:, 0] > 0, _tn[:, 0], _v, 0.5),
    "entropy": lambda: losses.entropy(_v),
    "policy_gradient_loss": lambda: losses.policy_gradient_loss(
        LOGITS, i32([[1], [1], [0]]), f32([1.0] * 3), f32([1.0] * 3)
    ),
    "entropy_loss": lambda: losses.entropy_loss(LOGITS, np.ones((3, 1), np.float32)),
    "value_loss": lambda: losses.value_loss(_tn, _tn, _tn[:, 0]),
}


@pytest.mark.parametrize("name", sorted(WRONG_RANK))
def test_wrong_rank_raises(name):
    with pytest.raises(AssertionError):
        WRONG_RANK[name]()


# --- Exploration -----------------------------------------------------------------------------


def test_epsilon_greedy_probs_split_ties():
    p = jitted(exploration.epsilon_greedy_probs)(f32([1.0, 1.0, 0.0, 0.0]), f32(0.2))
    close(p, [0.45, 0.45, 0.05, 0.05])


def test_epsilon_greedy_probs_batched_rows_sum_to_one():
    q = f32([[1.0, 1.0, 1.0], [0.0, 2.0, 1.0], [5.0, 5.0, 0.0], [-1.0, -3.0, -2.0]])
    probs = jitted(exploration.epsilon_greedy_probs)
    p = np.asarray(probs(q, f32(0.3)))
    third = 1.0 / 3.0
    close(p, [[third] * 3, [0.1, 0.8, 0.1], [0.45, 0.45, 0.1], [0.8, 0.1, 0.1]])
    close(p.sum(-1), np.ones(4))
    close(probs(q, f32(1.0)), np.full((4, 3), third))
    greedy = np.asarray(probs(q, f32(0.0)))
    close(greedy[1:], [[0, 1, 0], [0.5, 0.5, 0], [1, 0, 0]])


def _freqs(actions, num_actions):
    actions = np.asarray(actions)
    return np.bincount(actions.ravel(), minlength=num_actions) / actions.size


N_DRAWS = 20_000


@jax.jit
def _draws(key):
    """Actions drawn by exploration.sample / epsilon_greedy / softmax_policy, N_DRAWS each."""
    k0, k1, k2, k3 = jax.random.split(key, 4)
    probs = jnp.tile(jnp.array([0.1, 0.6, 0.0, 0.3]), (N_DRAWS, 1))  # one row per draw
    degenerate = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # many keys, same rows
    ties = jnp.tile(jnp.array([1.0, 1.0, 0.0]), (N_DRAWS, 1))
    logits = jnp.tile(jnp.array([0.0, math.log(3.0)]), (N_DRAWS, 1))
    keys = jax.random.split(k3, N_DRAWS)
    return {
        "sample": exploration.sample(k0, probs),
        "degenerate": jax.vmap(lambda k: exploration.sample(k, degenerate))(keys),
        "ties": exploration.epsilon_greedy(k1, ties, 0.3),
        "one_state": jax.vmap(
            lambda k: exploration.epsilon_greedy(k, jnp.array([0.0, 2.0, 1.0]), 0.3)
        )(keys),
        "softmax": exploration.softmax_policy(k2, logits),
    }


@pytest.fixture(scope="module")
def draws():
    return {k: np.asarray(v) for k, v in _draws(jax.random.key(0)).items()}


def test_sample_matches_the_probabilities(draws):
    actions = draws["sample"]
    assert actions.shape == (N_DRAWS,) and actions.dtype == np.int32
    freqs = _freqs(actions, 4)
    close(freqs, [0.1, 0.6, 0.0, 0.3], atol=0.02, rtol=0)
    assert freqs[2] == 0.0  # a zero-probability action is never drawn
    # Degenerate rows: all mass on the first or on the last action.
    np.testing.assert_array_equal(np.unique(draws["degenerate"][:, 0]), [0])
    np.testing.assert_array_equal(np.unique(draws["degenerate"][:, 1]), [2])


def test_epsilon_greedy_samples_ties_at_random(draws):
    close(_freqs(draws["ties"], 3), [0.45, 0.45, 0.1], atol=0.02, rtol=0)
    # Many keys on one state give the same frequencies.
    close(_freqs(draws["one_state"], 3), [0.1, 0.8, 0.1], atol=0.02, rtol=0)


def test_greedy_action_lowest_index_among_ties():
    q = f32([[0.0, 3.0, 3.0, 1.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 5.0]])
    a = np.asarray(jitted(exploration.greedy_action)(q))
    np.testing.assert_array_equal(a, [1, 0, 3])
    assert a.dtype == np.int32


def test_softmax_policy(draws):
    # greedy=True: the argmax, ties to the lowest index, whatever the key.
    logits = f32([[0.0, 5.0, 5.0], [1.0, 0.0, 1.0]])
    policy = jax.jit(exploration.softmax_policy, static_argnames="greedy")
    keys = jax.random.split(jax.random.key(1), 3)
    for key in keys:
        greedy = np.asarray(policy(key, logits, greedy=True))
        np.testing.assert_array_equal(greedy, [1, 0])
        assert greedy.dtype == np.int32
    # Sampling follows the softmax: [0.25, 0.75].
    assert draws["softmax"].dtype == np.int32
    close(_freqs(draws["softmax"], 2), [0.25, 0.75], atol=0.02, rtol=0)


class _EpsHParams(NamedTuple):
    epsilon: float = 1.0
    epsilon_decay: float = 0.5
    epsilon_end: float = 0.1


def test_epsilon_at_decays_to_the_floor():
    # max(0.1, 0.5 ** count): 1, 0.5, 0.125, then 0.0625 -> 0.1, and 0.1 for good.
    eps = jitted(exploration.epsilon_at)(_EpsHParams(), i32([0, 1, 3, 4, 100]))
    close(eps, [1.0, 0.5, 0.125, 0.1, 0.1])
    # A scalar count, as the agents pass it.
    assert float(jitted(exploration.epsilon_at)(_EpsHParams(), i32(3))) == pytest.approx(0.125)
