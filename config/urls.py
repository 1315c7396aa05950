from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.static import serve

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="lab:alloy_list", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("lab/", include("lab.urls")),
    path("mining/", include("mining.urls")),
    path("design/", include("design.urls")),
    path("ml/", include("training.urls")),
    path("api/", include("core.api_urls")),
    # Uploaded files are only ever served to logged-in users through views;
    # this plain route is for a person's first run (DEBUG) only.
]
if settings.DEBUG:
    urlpatterns += [path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]
