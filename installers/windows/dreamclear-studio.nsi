; DreamClear Studio for Windows: a per-user installer (no administrator rights).
; Built by installers/windows/build.sh, which passes:
;   /DVERSION=0.1.0  /DSTAGE=<the staged app folder>  /DOUTFILE=<the .exe to write>
; Installs to %LOCALAPPDATA%\Programs\DreamClear Studio: the app's code, the pinned uv.exe and
; two launchers. The first start sets up Python and torch in %LOCALAPPDATA%\dreamclear-studio\
; runtime (docs/installers.md). The uninstaller removes what this installed and, only when the
; user says so, that runtime folder; the user's photos, models and settings always stay.

Unicode true
!include "MUI2.nsh"

!define APP_NAME "DreamClear Studio"
!define APP_KEY "DreamClearStudio"
!define PROG_ID "DreamClearStudio.Photo"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_KEY}"
!define RUNTIME "$LOCALAPPDATA\dreamclear-studio\runtime"

Name "${APP_NAME}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
RequestExecutionLevel user
!ifdef FAST_COMPRESSION  ; tests: seconds instead of minutes, a larger file
SetCompressor zlib
!else
SetCompressor /SOLID lzma
!endif
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!define MUI_ICON "${STAGE}\icons\dreamclear-studio.ico"
!define MUI_UNICON "${STAGE}\icons\dreamclear-studio.ico"
!define MUI_FINISHPAGE_RUN "$INSTDIR\dreamclear-studio.cmd"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME} (the first start sets up torch for this PC)"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; "Open with" for one extension: the extension lists our ProgID among its OpenWithProgids, so
; the user's default viewer stays the default.
!macro OpenWith EXT
    WriteRegStr HKCU "Software\Classes\${EXT}\OpenWithProgids" "${PROG_ID}" ""
!macroend
!macro NoOpenWith EXT
    DeleteRegValue HKCU "Software\Classes\${EXT}\OpenWithProgids" "${PROG_ID}"
!macroend

Section "Install"
    SetOutPath "$INSTDIR"
    RMDir /r "$INSTDIR\app"  ; an update replaces the code, never leaves old modules behind
    File /r "${STAGE}\app"
    File "${STAGE}\uv.exe"
    File "${STAGE}\dreamclear-studio.cmd"
    File "${STAGE}\dreamclear.cmd"
    File "${STAGE}\icons\dreamclear-studio.ico"
    WriteUninstaller "$INSTDIR\uninstall.exe"

    CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\dreamclear-studio.cmd" "" \
        "$INSTDIR\dreamclear-studio.ico" 0 SW_SHOWMINIMIZED

    WriteRegStr HKCU "Software\Classes\${PROG_ID}" "" "Photo (${APP_NAME})"
    WriteRegStr HKCU "Software\Classes\${PROG_ID}\DefaultIcon" "" "$INSTDIR\dreamclear-studio.ico"
    WriteRegStr HKCU "Software\Classes\${PROG_ID}\shell\open" "FriendlyAppName" "${APP_NAME}"
    WriteRegStr HKCU "Software\Classes\${PROG_ID}\shell\open\command" "" \
        '"$INSTDIR\dreamclear-studio.cmd" "%1"'
    !insertmacro OpenWith ".jpg"
    !insertmacro OpenWith ".jpeg"
    !insertmacro OpenWith ".png"
    !insertmacro OpenWith ".tif"
    !insertmacro OpenWith ".tiff"
    !insertmacro OpenWith ".webp"

    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "DreamClear Studio"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\dreamclear-studio.ico"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
    WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
    ; Tell Explorer the associations changed (SHCNE_ASSOCCHANGED).
    System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd

Section "Uninstall"
    Delete "$SMPROGRAMS\${APP_NAME}.lnk"
    !insertmacro NoOpenWith ".jpg"
    !insertmacro NoOpenWith ".jpeg"
    !insertmacro NoOpenWith ".png"
    !insertmacro NoOpenWith ".tif"
    !insertmacro NoOpenWith ".tiff"
    !insertmacro NoOpenWith ".webp"
    DeleteRegKey HKCU "Software\Classes\${PROG_ID}"
    DeleteRegKey HKCU "${UNINSTALL_KEY}"
    RMDir /r "$INSTDIR\app"
    Delete "$INSTDIR\uv.exe"
    Delete "$INSTDIR\dreamclear-studio.cmd"
    Delete "$INSTDIR\dreamclear.cmd"
    Delete "$INSTDIR\dreamclear-studio.ico"
    Delete "$INSTDIR\uninstall.exe"
    RMDir "$INSTDIR"
    ; The set-up's environment (Python, torch: GBs) is the user's to keep for a reinstall; a
    ; silent uninstall keeps it. Photos, models and settings are never removed.
    MessageBox MB_YESNO|MB_ICONQUESTION \
        "Also remove the downloaded Python and torch (${RUNTIME})?$\n$\nYour photos, models \
        and settings are kept either way." /SD IDNO IDNO keep_runtime
        RMDir /r "${RUNTIME}"
    keep_runtime:
    System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd
