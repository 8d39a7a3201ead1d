"""A minimal Django project: one view and one form, no database."""

SECRET_KEY = "rustgun-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djproj.urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
DATABASES = {}
USE_TZ = True
TEMPLATES = []
