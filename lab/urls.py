from django.urls import path

from core.views import job_action_view

from . import views, views_imports

app_name = "lab"
urlpatterns = [
    path("alloys/", views.alloy_list, name="alloy_list"),
    path("alloys/<int:pk>/", views.alloy_detail, name="alloy_detail"),
    path("alloys/export.<str:fmt>", views_imports.export_alloys, name="alloy_export"),
    path("samples/", views.sample_list, name="sample_list"),
    path("samples/<int:pk>/", views.sample_detail, name="sample_detail"),
    path("samples/<int:pk>/xrd/new/", views.add_xrd, name="add_xrd"),
    path("samples/<int:pk>/dsc/new/", views.add_dsc, name="add_dsc"),
    path("experiments/new/", views.log_experiment, name="log_experiment"),
    path("xrd/<int:pk>/", views.xrd_detail, name="xrd_detail"),
    path("xrd/<int:pk>/plot.svg", views.xrd_plot, name="xrd_plot"),
    path("xrd-analyses/<int:pk>/<str:action>/",
         job_action_view("lab.XRDAnalysis", detail_url=lambda job: job.get_absolute_url()),
         name="xrd_analysis_action"),
    path("dsc/<int:pk>/plot.svg", views.dsc_plot, name="dsc_plot"),
    path("samples/<int:pk>/correct/", views.correct_sample, name="correct_sample"),
    path("samples/<int:pk>/retract/", views.retract_sample, name="retract_sample"),
    path("xrd/<int:pk>/retract/", views.retract_xrd, name="retract_xrd"),
    path("dsc/<int:pk>/correct/", views.correct_dsc, name="correct_dsc"),
    path("dsc/<int:pk>/accept-proposals/", views.accept_dsc_proposals, name="accept_dsc_proposals"),
    path("dsc/<int:pk>/retract/", views.retract_dsc, name="retract_dsc"),
    path("values/<int:pk>/correct/", views.correct_value, name="correct_value"),
    path("values/<int:pk>/retract/", views.retract_value, name="retract_value"),
    path("values/<int:pk>/resolve/", views.resolve_conflict, name="resolve_conflict"),
    path("imports/", views_imports.import_list, name="import_list"),
    path("imports/<int:pk>/", views_imports.import_detail, name="import_detail"),
    path("imports/<int:pk>/status.json", views_imports.import_status, name="import_status"),
    path("imports/<int:pk>/<str:action>/", views_imports.import_action, name="import_action"),
]
