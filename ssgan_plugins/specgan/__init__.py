"""SpecGAN-family networks sized from the transform's image, and the hinge loss."""
