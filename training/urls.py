from django.urls import path

from . import views

app_name = "ml"
urlpatterns = [
    path("", views.model_list, name="model_list"),
    path("retrain/", views.retrain, name="retrain"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/status.json", views.run_status, name="run_status"),
    path("runs/<int:pk>/curves.svg", views.run_curves, name="run_curves"),
    path("runs/<int:pk>/<str:action>/", views.run_action, name="run_action"),
    path("versions/<int:pk>/activate/", views.version_activate, name="version_activate"),
]
