"""The paper's nets (§2, Tables 1-2): the configuration table, the Gluon models and
their dense form, weights in and out (convert), and the tables `vgg nets` prints."""
