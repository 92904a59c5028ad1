; Offline Coder for Windows: a per-user installer (no administrator rights) for the PyInstaller
; bundle that build.spec makes on Windows (dist\offline-coder\). See installer/README.md.
;
;   makensis /DVERSION=0.1.0 installer\windows\offline-coder.nsi
;
; Defines (all optional): PAYLOAD   the bundle folder     (default: dist\offline-coder)
;                         VERSION   the app's version     (default: 0.0.0)
;                         OUTFILE   the installer to write (default: dist\OfflineCoder-Setup-VERSION.exe)
;
; Installs to %LOCALAPPDATA%\Programs\Offline Coder with Start-menu and desktop shortcuts and an
; entry in Settings -> Apps (HKCU). The uninstaller removes the program; it asks before removing
; the app's Windows Firewall rules (that needs administrator approval, so it is a separate
; question) and before deleting settings, chats and models (%LOCALAPPDATA%\OfflineCoder), which
; stay unless the user ticks yes. tests/test_installer.py compiles this script with makensis
; against a placeholder payload; it has not been run on Windows here.

Unicode true
!include "MUI2.nsh"
!include "LogicLib.nsh"

!define APP_NAME "Offline Coder"
!define EXE "offline-coder.exe"
!define CLI_EXE "offline-coder-cli.exe"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\OfflineCoder"
!define DATA_DIR "$LOCALAPPDATA\OfflineCoder"
; The rule names app/core/net/firewall/windows.py gives (rule_name: "Offline Coder block (<exe>)").
!define FW_RULE_GUI "Offline Coder block (${EXE})"
!define FW_RULE_CLI "Offline Coder block (${CLI_EXE})"

!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef PAYLOAD
  !define PAYLOAD "${__FILEDIR__}\..\..\dist\offline-coder"
!endif
!ifndef OUTFILE
  !define OUTFILE "${__FILEDIR__}\..\..\dist\OfflineCoder-Setup-${VERSION}.exe"
!endif

Name "${APP_NAME}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${UNINST_KEY}" "InstallLocation"
RequestExecutionLevel user
SetCompressor /SOLID lzma
BrandingText "${APP_NAME} ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!define MUI_ICON "${__FILEDIR__}\..\..\resources\icons\offline-coder.ico"
!define MUI_UNICON "${__FILEDIR__}\..\..\resources\icons\offline-coder.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  SetShellVarContext current
FunctionEnd

Function un.onInit
  SetShellVarContext current
FunctionEnd

Section "Offline Coder" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; An update replaces the whole program folder: no stale libraries from the old version.
  RMDir /r "$INSTDIR\_internal"
  File /r "${PAYLOAD}\*"
  WriteUninstaller "$INSTDIR\Uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${EXE}" "" "$INSTDIR\${EXE}" 0
  CreateShortCut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${EXE}" "" "$INSTDIR\${EXE}" 0

  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "${APP_NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\${EXE},0"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  SectionGetSize ${SecMain} $0
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" $0
SectionEnd

; Whether Windows Firewall has a rule of this name (reading rules needs no administrator).
!macro HasRule RULE OUTVAR
  nsExec::ExecToStack 'netsh advfirewall firewall show rule name="${RULE}"'
  Pop $R8   ; exit code: 0 when the rule exists
  Pop $R9   ; its output (unused)
  ${If} $R8 == 0
    StrCpy ${OUTVAR} 1
  ${Else}
    StrCpy ${OUTVAR} 0
  ${EndIf}
!macroend

Section "Uninstall"
  ; The program goes in any case.
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${EXE}"
  Delete "$INSTDIR\${CLI_EXE}"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINST_KEY}"

  ; Firewall rules: only if the app made any; removing them needs administrator approval.
  !insertmacro HasRule "${FW_RULE_GUI}" $1
  !insertmacro HasRule "${FW_RULE_CLI}" $2
  ${If} $1 == 1
  ${OrIf} $2 == 1
    MessageBox MB_YESNO|MB_ICONQUESTION "Also remove the Windows Firewall rules ${APP_NAME} created \
        to block its own connections?$\n$\nWindows will ask for administrator approval." \
        /SD IDNO IDNO fw_done
    ExecShellWait "runas" "$SYSDIR\cmd.exe" '/c netsh advfirewall firewall delete rule name="${FW_RULE_GUI}" & \
        netsh advfirewall firewall delete rule name="${FW_RULE_CLI}"' SW_HIDE
    fw_done:
  ${EndIf}

  ; Settings, chats, downloaded models and indexes stay unless the user says otherwise.
  ${If} ${FileExists} "${DATA_DIR}\*.*"
    MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 "Also delete your settings, chats, downloaded \
        models and project indexes?$\n$\n${DATA_DIR}$\n$\nChoose No to keep them for a later \
        installation." /SD IDNO IDNO data_done
    RMDir /r "${DATA_DIR}"
    data_done:
  ${EndIf}
SectionEnd
