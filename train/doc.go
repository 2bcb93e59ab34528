// Package train fits the score network by denoising score matching: it wires
// the model, the loss, the data, the optimizer (Adam with state we own, so
// that a checkpoint holds it), the EMA of the weights and the checkpoints.
package train
