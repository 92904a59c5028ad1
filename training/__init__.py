"""Fine-tuning code for the Colab notebook (colab_training.ipynb inlines these modules, so each one
stands alone and the tests run the very code the notebook runs)."""
