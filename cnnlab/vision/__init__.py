"""Images in, classes and explanations out.

- `images`: the one image decoder (untrusted bytes to RGB, every failure one line) and the
  Inception preprocessing contract; sample photos shipped with scikit-image/scikit-learn.
- `inception`: Inception v3: weights (environment, Keras cache, download), labels, the
  Classify page's classifier.
- `gradcam`: Grad-CAM. A new explanation method goes beside it, in `vision`.
- `custom_model`: a classifier another page hands to Classify for this session.
- `charts`: the Classify page's figures.
"""
