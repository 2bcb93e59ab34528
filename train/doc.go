// Package train fits the score network by denoising score matching: it wires
// the model (package model), the diffusion process that noises the data
// (package sde), the loss, the data, the optimiser and the EMA of the weights
// (package optim, whose state the checkpoints hold), train.csv and the
// checkpoints, and resumes a run exactly where it stopped. With -classifier
// (Config.Classifier) it fits instead a noise-conditional classifier on
// noised, labelled images by cross-entropy (classify.go), for classifier
// guidance. Given an MPI
// communicator (Config.Comm, build tag mpi) it spreads every batch over the
// ranks of the job (dist.go), each rank on a GPU when it trains on a device
// (pickDevice).
package train
